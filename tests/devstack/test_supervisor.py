"""``llm-streams up`` (what ``make run`` runs): simulator and worker wired together."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_up_enriches_with_the_simulator_and_stops_on_ctrl_c(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in (os.environ | worker_env).items()
        if not k.endswith(("_API_KEY", "_BASE_URL"))
    }
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "streams", "up", "--data-dir", str(tmp_path / "data")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 120
        while "worker ready" not in log.read_text():
            assert up.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        text = log.read_text()
        assert "simulating openai, deepseek" in text
        assert f"using the broker at {worker_env['KAFKA_BOOTSTRAP_SERVERS']}" in text

        produce = subprocess.run(
            [sys.executable, "-m", "streams", "produce", str(ROOT / "examples" / "jobs.jsonl")],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert produce.returncode == 0, produce.stderr
        tail = subprocess.run(
            [sys.executable, "-m", "streams", "tail", "--limit", "5", "--timeout", "60"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert len(tail.stdout.splitlines()) == 5
        providers = {json.loads(line)["provider"] for line in tail.stdout.splitlines()}
        assert providers <= {"openai", "deepseek"}
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    assert code == 0, log.read_text()[-3000:]
    assert log.read_text().rstrip().endswith("[up] stopped")
