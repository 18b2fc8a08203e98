"""``llm-streams worker --processes 2``: two processes in one group, stopped together."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorThread
from streams.fleet import processes_for
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow


def test_processes_is_a_count_or_auto() -> None:
    assert processes_for("3") == 3
    assert processes_for("auto") == (os.cpu_count() or 1)
    with pytest.raises(ValueError, match="at least one"):
        processes_for("0")


def _assigned(port: int) -> int:
    try:
        return int(
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).json()["assigned_partitions"]
        )
    except (httpx.HTTPError, ValueError, KeyError):
        return 0


def _first_error(log: str) -> str:
    """From the first error on: a child's failure, not the shutdown it caused."""
    start = log.find("[ERROR]")
    return log[start : start + 3000] if start >= 0 else log[-3000:]


def test_two_processes_share_the_work_and_stop_together(
    worker_env: dict[str, str], sim: SimulatorThread, tmp_path: Path
) -> None:
    port = free_port(count=2)
    env = worker_env | {"LLM_TOPIC_PARTITIONS": "4", "LLM_SERVICE_PORT": str(port)}
    with (tmp_path / "fleet.log").open("ab") as log:
        fleet = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--processes", "2"],
            env=os.environ | env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while not (_assigned(port) and _assigned(port + 1)):
            assert fleet.poll() is None, _first_error((tmp_path / "fleet.log").read_text())
            assert time.monotonic() < deadline, "both processes hold partitions"
            time.sleep(0.5)
        children = psutil.Process(fleet.pid).children()
        assert len(children) == 2
        bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
        jobs = [job_record(f"f{n}") for n in range(40)]
        asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], jobs))
        enriched = asyncio.run(consume(bootstrap, env["LLM_TOPIC_ENRICHED"], count=40))
        assert len({r.key for r in enriched}) == 40
    finally:
        fleet.send_signal(signal.SIGTERM)
        assert fleet.wait(90) == 0
    assert not any(child.is_running() for child in children), "the children stopped too"
