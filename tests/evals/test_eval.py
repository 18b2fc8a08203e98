"""``llm-streams eval`` on the real broker against the simulator answering from the shipped
set's labels with known error rates: the scores find the rates, a second run pays for
nothing, the gate names the field, and the runs are kept for --history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.harness import SimulatorThread
from devstack.local_model import MODEL_NAME
from streams.evals.sets import load_set
from tests.conftest import ROOT, run_cli

pytestmark = [pytest.mark.slow, pytest.mark.broker]

SET = ROOT / "evals" / "jobs.v1.jsonl"
CANDIDATE = "openai/gpt-5.4-nano"
ERRORS = {"seniority": 0.3, "remote_policy": 0.1}  # injected by the simulator


def _runs(stdout: str) -> dict[str, Any]:
    return {run["score"]["candidate"]: run for run in json.loads(stdout)}


def test_the_scores_find_the_injected_errors_and_a_second_run_pays_nothing(
    sim: SimulatorThread, worker_env: dict[str, str]
) -> None:
    sim.set_labels(SET.read_text())
    sim.set_faults("openai", perturb=ERRORS, batch_delay_s=0.2)
    env = worker_env | {"LLM_BATCH_POLL_S": "0.2", "LLM_PROVIDER_CHAIN": "openai"}
    args = ("eval", str(SET), "--candidate", CANDIDATE, "--format", "json")

    dry = run_cli(*args, "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert f"{CANDIDATE}: 62 of 62 items to answer by Batch API (batch rate)" in dry.stderr
    assert "production (openai/gpt-5.4-mini): 62 of 62 items to answer by live calls" in dry.stderr
    assert sim.requests() == {}, "a dry run calls nothing"

    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    runs = _runs(first.stdout)
    candidate, production = runs[CANDIDATE], runs["production (openai/gpt-5.4-mini)"]
    assert candidate["paid"] == production["paid"] == 62
    for run in (candidate, production):
        fields = run["score"]["fields"]
        for field, rate in ERRORS.items():
            found = fields[field]
            assert found["low"] <= 1 - rate <= found["high"], (field, found)
        assert fields["role_family"]["mean"] == 1.0, "labelled fields not perturbed are right"
        assert run["score"]["failure_rate"] == 0
    sent = sim.requests()["openai"]
    assert sent >= 62, "production's 62 live calls (the candidate's went as one batch)"

    again = run_cli(*args, "--require", "seniority=0.9", env=env)
    assert sim.requests()["openai"] == sent, "nothing answered before is paid again"
    assert [run["paid"] for run in _runs(again.stdout).values()] == [0, 0]
    assert again.returncode == 1
    assert f"FAIL {CANDIDATE}: seniority 0." in again.stderr
    assert "is below 0.9" in again.stderr

    history = run_cli("eval", "--history", "--field", "seniority", env=env)
    assert history.returncode == 0, history.stderr
    rows = history.stdout.splitlines()[1:]
    assert len(rows) == 4
    assert all("jobs.v1.jsonl" in row for row in rows)


def test_a_bad_set_is_refused_with_its_line_number(
    worker_env: dict[str, str], tmp_path: Any
) -> None:
    bad = tmp_path / "bad.jsonl"
    lines = SET.read_text().splitlines()[:3]
    lines.insert(
        2,
        json.dumps(
            {
                "job": {"job_id": "x", "title": "t", "description": "d"},
                "expected": {"seniority": "boss"},
            }
        ),
    )
    bad.write_text("\n".join(lines))
    done = run_cli("eval", str(bad), "--candidate", CANDIDATE, env=worker_env)
    assert done.returncode == 1
    assert "bad.jsonl line 3: expected.seniority: 'boss' is not one of" in done.stderr
    assert len(load_set(SET).items) == 62


def test_a_real_model_runs_the_shipped_set(worker_env: dict[str, str], local_model: str) -> None:
    """SmolLM2-135M on the set's first items: its accuracy reported, not asserted (a tiny
    model); every item ends answered, invalid or failed, and is scored."""
    env = worker_env | {
        "COMPATIBLE_BASE_URL": local_model,
        "COMPATIBLE_MODEL": MODEL_NAME,
        "LLM_MAX_OUTPUT_TOKENS": "512",  # the tiny model rambles: truncated sooner
        "LLM_ATTEMPT_TIMEOUT_S": "60",
        "LLM_JOB_DEADLINE_S": "120",
        # the candidate's limits (as a shadow candidate's): two answers at a time on 2 cores
        "LLM_SHADOW": json.dumps(
            [
                {
                    "provider": "compatible",
                    "model": MODEL_NAME,
                    "sample": 1.0,
                    "limits": {"concurrency": 2},
                }
            ]
        ),
    }
    name = f"compatible/{MODEL_NAME}"
    done = run_cli(
        "eval",
        str(SET),
        "--candidate",
        name,
        "--no-production",
        "--limit",
        "4",
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    print(f"\n{done.stdout}")
    assert f"{name} on jobs.v1.jsonl (first 4)" in done.stdout
    assert "4 items, 4 answered now" in done.stdout
