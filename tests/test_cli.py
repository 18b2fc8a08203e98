"""The CLI as a person runs it: a worker process, produce from a file, tail the output."""

from __future__ import annotations

import json
import signal
from datetime import UTC, datetime
from pathlib import Path

import httpx
import jsonschema
import pytest

from devstack.harness import worker_process
from streams.schemas import contract_file
from tests.conftest import ROOT, run_cli

pytestmark = pytest.mark.slow

EXAMPLES = ROOT / "examples" / "jobs.jsonl"


def test_produce_then_tail_shows_schema_valid_enriched_jobs(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    jobs = EXAMPLES.read_text(encoding="utf-8").splitlines()
    schema = json.loads((ROOT / "schemas" / contract_file("enriched-job")).read_text())
    with worker_process(worker_env, tmp_path / "worker.log") as worker:
        produced = run_cli("produce", str(EXAMPLES), env=worker_env)
        assert produced.returncode == 0, produced.stderr
        assert f"sent {len(jobs)} jobs" in produced.stdout

        tailed = run_cli("tail", "--limit", "20", "--timeout", "60", env=worker_env)
        assert tailed.returncode == 0, tailed.stderr
        lines = tailed.stdout.splitlines()
        assert len(lines) == 20
        for line in lines:
            jsonschema.validate(json.loads(line), schema)

        everything = run_cli(
            "tail", "--from-beginning", "--limit", str(len(jobs)), "--timeout", "60", env=worker_env
        )
        ids = {json.loads(line)["job_id"] for line in everything.stdout.splitlines()}
        assert ids == {json.loads(job)["job_id"] for job in jobs}
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0, "SIGTERM stops the worker cleanly"


def _first_raw_record(env: dict[str, str]) -> str:
    """The first record of the raw topic, as ``llm-streams tail`` prints it."""
    shown = run_cli(
        "tail",
        "--topic",
        env["LLM_TOPIC_RAW"],
        "--from-beginning",
        "--limit",
        "1",
        "--timeout",
        "10",
        env=env,
    )
    return shown.stdout


def test_produce_names_rejected_lines_and_exits_non_zero(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    source = tmp_path / "mixed.jsonl"
    good = EXAMPLES.read_text(encoding="utf-8").splitlines()[0]
    source.write_text(
        "\n".join([good, '{"job_id": "x", "title": "no description"}', "not json", ""]),
        encoding="utf-8",
    )
    result = run_cli("produce", str(source), env=worker_env)
    assert result.returncode == 1
    assert "line 2: rejected: description: Field required" in result.stderr
    assert "line 3: rejected" in result.stderr
    assert "sent 1 jobs" in result.stdout
    assert json.loads(_first_raw_record(worker_env))["job_id"] == json.loads(good)["job_id"]


def test_produce_reads_csv_with_a_header(worker_env: dict[str, str], tmp_path: Path) -> None:
    source = tmp_path / "jobs.csv"
    source.write_text(
        "job_id,title,description,location\n"
        'csv-1,Data Engineer,"Spark, Kafka.",Berlin\n'
        "csv-2,No description,,\n",
        encoding="utf-8",
    )
    result = run_cli("produce", str(source), env=worker_env)
    assert result.returncode == 1
    assert "line 3: rejected: description: Field required" in result.stderr
    assert "sent 1 jobs" in result.stdout
    job = json.loads(_first_raw_record(worker_env))
    assert (job["job_id"], job["description"], job["location"]) == (
        "csv-1",
        "Spark, Kafka.",
        "Berlin",
    )


def test_tail_says_when_the_topic_does_not_exist(worker_env: dict[str, str]) -> None:
    result = run_cli("tail", "--topic", "no.such.topic", "--limit", "1", env=worker_env)
    assert result.returncode == 1
    assert "does not exist" in result.stderr


def test_every_command_that_reads_or_writes_a_topic_connects_over_sasl_ssl(
    cluster_env: dict[str, str], tmp_path: Path
) -> None:
    """On the three-broker SASL_SSL cluster, as the service's principal with only its ACLs:
    the worker and each command that reaches a topic, with the same KAFKA_* settings."""
    env = cluster_env
    today = datetime.now(UTC).date().isoformat()
    with worker_process(env, tmp_path / "worker.log"):
        produced = run_cli("produce", str(EXAMPLES), env=env)
        assert produced.returncode == 0, produced.stderr
        tailed = run_cli("tail", "--limit", "3", "--timeout", "60", env=env)
        assert tailed.returncode == 0, tailed.stderr
        job_id = json.loads(tailed.stdout.splitlines()[0])["job_id"]
        web = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        assert httpx.get(f"{web}/health", timeout=30).json()["broker"]["connected"] is True
        # The job page opens its own clients (TLS and SCRAM with each broker it reads): about
        # 1.8 s here, and now and then 30 s (seen in two of five calls once; cause not found).
        assert httpx.get(f"{web}/jobs/{job_id}", timeout=90).json()["state"] == "enriched"
        for command in (
            ["job", job_id, "--json"],
            ["report", "--from", today, "--to", today, "--reprice", "--format", "json"],
            ["replay", "--dry-run"],
            ["compare", "--format", "json"],
            ["batches"],
            ["provider", "disable", "deepseek"],
            ["config", "set", "LLM_JOB_DEADLINE_S=30"],
        ):
            done = run_cli(*command, env=env)
            assert done.returncode == 0, f"{command}: {done.stderr}"
        assert json.loads(run_cli("job", job_id, "--json", env=env).stdout)["state"] == "enriched"
