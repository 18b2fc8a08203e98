"""Drift: each enum and boolean field's shares in the latest window against the reference,
as a PSI; a field crossing 0.25 logged once, naming the values that moved and what changed."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread, worker_process
from streams.config.slices import DriftConfig, KafkaCluster
from streams.observe.drift import DriftFollower, drift_fields, psi, status_of
from tests.eventually import eventually
from tests.kafka_helpers import job_record, produce
from tests.shadow.test_compare import BASE

DAY_S = 86400.0
NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def _follower(clock: Clock) -> DriftFollower:
    config = DriftConfig(
        cluster=KafkaCluster.plaintext("127.0.0.1:1"),
        topic="jobs.enriched",
        window_days=1,
        reference_days=7,
    )
    return DriftFollower(config, clock=clock)


def _record(at_s: float, *, model: str = "gpt-5.4-mini", **changes: Any) -> Any:
    value = {
        "provider": "openai",
        "model": model,
        "prompt_version": "p1",
        "enrichment": BASE | changes,
        "job_id": "j",
    }
    return SimpleNamespace(value=json.dumps(value).encode(), timestamp=int(at_s * 1000))


def test_the_fields_are_the_enums_and_booleans() -> None:
    assert drift_fields() == (
        "seniority",
        "role_family",
        "remote_policy",
        "salary.currency",
        "salary.period",
    )


def test_psi_is_zero_for_the_same_shares_and_grows_with_the_move() -> None:
    assert psi(Counter(a=50, b=50), Counter(a=5, b=5)) == 0
    small = psi(Counter(a=50, b=50), Counter(a=55, b=45))
    large = psi(Counter(a=50, b=50), Counter(a=90, b=10))
    assert status_of(small) == "stable"
    assert status_of(large) == "act"
    assert status_of(None) == "too_few"


def test_a_field_that_moves_is_logged_once_with_the_values_and_the_model_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    follower = _follower(clock)
    for n in range(100):  # the reference: the week before, half senior, half mid
        follower.on_record(_record(NOW - 3 * DAY_S + n, seniority="senior" if n % 2 else "mid"))
    for n in range(100):  # today: a new model says junior for most
        follower.on_record(
            _record(NOW - 3600 + n, model="gpt-5.4-nano", seniority="junior" if n % 5 else "mid")
        )
    report = follower.report()
    by_field = {found.field: found for found in report.fields}
    assert (report.current_answers, report.reference_answers) == (100, 100)
    assert by_field["seniority"].status == "act"
    assert by_field["seniority"].current == {"junior": 0.8, "mid": 0.2}
    assert by_field["remote_policy"].psi == 0
    assert [(d.model, d.answers) for d in report.days] == [
        ("gpt-5.4-mini", 100),
        ("gpt-5.4-nano", 100),
    ]

    with caplog.at_level(logging.WARNING, logger="streams.observe.drift"):
        follower.check()
        follower.check()
    (said,) = [r.getMessage() for r in caplog.records]
    assert said.startswith("drift: seniority moved (PSI ")
    assert "junior 0.00 → 0.80" in said
    assert "model changed (gpt-5.4-mini → gpt-5.4-nano)" in said
    assert "provider" not in said.split(";")[-1], "the provider did not change"


def test_too_few_answers_say_nothing_and_old_ones_are_forgotten() -> None:
    clock = Clock()
    follower = _follower(clock)
    for n in range(10):
        follower.on_record(_record(NOW - 2 * DAY_S + n))
        follower.on_record(_record(NOW - 60 + n))
    assert {found.status for found in follower.report().fields} == {"too_few"}
    clock.now += 30 * DAY_S
    report = follower.report()
    assert (report.current_answers, report.reference_answers) == (0, 0)
    assert report.days == []


@pytest.mark.slow
@pytest.mark.broker
def test_a_live_worker_sees_the_answers_drift_when_the_model_changes_its_mind(
    worker_env: dict[str, str], sim: SimulatorThread, tmp_path: Path
) -> None:
    """Windows of seconds instead of days: 60 jobs answered as usual, then (once they are in
    the reference window) 60 more with every seniority moved by the simulator."""
    window_s = 15
    env = worker_env | {
        "LLM_DRIFT_WINDOW_DAYS": str(window_s / DAY_S),
        "LLM_DRIFT_REFERENCE_DAYS": str(4 * window_s / DAY_S),
    }
    url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
    bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
    log = tmp_path / "worker.log"
    with worker_process(env, log):
        asyncio.run(produce(bootstrap, raw, [job_record(f"a{n}") for n in range(60)]))
        eventually(
            lambda: httpx.get(f"{url}/drift").json()["current_answers"],
            lambda answers: answers == 60,
            what="the first 60 answers counted",
        )
        time.sleep(window_s)  # the first answers pass into the reference window
        sim.set_faults("openai", perturb={"seniority": 1.0})
        sim.set_faults("deepseek", perturb={"seniority": 1.0})
        asyncio.run(produce(bootstrap, raw, [job_record(f"b{n}") for n in range(60)]))
        drift = eventually(
            lambda: httpx.get(f"{url}/drift").json(),
            lambda found: found["current_answers"] == 60 and found["reference_answers"] == 60,
            what="the second 60 answers counted against the first",
        )
        by_field = {found["field"]: found for found in drift["fields"]}
        assert by_field["seniority"]["status"] == "act"
        assert by_field["seniority"]["current"] == {"lead": 1.0}
        assert by_field["remote_policy"]["status"] == "stable"
        metrics = httpx.get(f"{url}/metrics").text
        assert 'llm_drift_psi{field="seniority"}' in metrics
        warned = eventually(
            lambda: [line for line in log.read_text().splitlines() if "drift: " in line],
            what="the drift warning in the log",
        )
    assert len(warned) == 1
    assert "drift: seniority moved" in warned[0]
    assert "senior 1.00 → 0.00" in warned[0]
    assert "provider, model and prompt version unchanged" in warned[0]
