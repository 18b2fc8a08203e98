"""``llm-streams up`` (what ``make run`` runs): simulator and worker wired together."""

from __future__ import annotations

import json
import os
import pty
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.eventually import eventually

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")  # colours and cursor movements


def test_up_enriches_with_the_simulator_and_stops_on_ctrl_c(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = _simulated(worker_env)
    log = tmp_path / "up.log"
    with log.open("wb") as out:
        up = subprocess.Popen(
            [sys.executable, "-m", "streams", "up", "--data-dir", str(tmp_path / "data")],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for(log, "worker ready", process=up)
        text = log.read_text()
        assert "simulating openai, deepseek" in text
        assert "traces: off (--traces starts a local Jaeger" in text
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
        _wait_for(log, "[up] jobs in 33 · enriched 33 (0 from cache) · dead-lettered 0")
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
    assert code == 0, log.read_text()[-3000:]
    text = log.read_text()
    assert text.rstrip().endswith("[up] stopped")
    assert "[INFO]" not in text, "the worker's log goes to its file, not the terminal"
    worker_log = (tmp_path / "data" / "logs" / "worker.log").read_text()
    assert "ready: consuming" in worker_log
    assert "HTTP Request" not in worker_log, "no line per provider call"
    assert len(worker_log.splitlines()) < 15, worker_log


def test_up_on_a_terminal_shows_a_status_block_that_updates_in_place(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = _simulated(worker_env) | {"COLUMNS": "120", "LINES": "40"}
    screen = tmp_path / "screen"
    primary, secondary = pty.openpty()
    up = subprocess.Popen(
        [sys.executable, "-m", "streams", "up", "--data-dir", str(tmp_path / "data")],
        env=env,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
    )
    os.close(secondary)
    reader = threading.Thread(target=_copy, args=(primary, screen), daemon=True)
    reader.start()
    try:
        _wait_for(screen, "worker ready")
        subprocess.run(
            [sys.executable, "-m", "streams", "produce", str(ROOT / "examples" / "jobs.jsonl")],
            env=env,
            capture_output=True,
            timeout=60,
            check=True,
        )
        _wait_for(screen, re.compile(r"jobs in +enriched.*\n +33 +33 +0 +0", re.S))
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(90)
        reader.join(5)
    text = screen.read_text(errors="replace")
    assert code == 0, text[-3000:]
    assert "\x1b[" in text, "the block is redrawn in place (cursor movements)"
    assert "[up] jobs in" not in text, "no plain lines on a terminal"
    assert re.search(r"openai +\d+ +0 +closed", ANSI.sub("", text))


def _simulated(worker_env: dict[str, str]) -> dict[str, str]:
    """The test's environment without provider keys or URLs: ``up`` starts the simulator."""
    env = os.environ | worker_env
    return {k: v for k, v in env.items() if not k.endswith(("_API_KEY", "_BASE_URL"))}


def _copy(primary: int, to: Path) -> None:
    with to.open("ab") as out:
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the terminal's other end closed
                return
            if not chunk:
                return
            out.write(chunk)
            out.flush()


def _wait_for(
    log: Path,
    expected: str | re.Pattern[str],
    timeout_s: float = 120,
    *,
    process: subprocess.Popen[bytes] | None = None,
) -> None:
    """Until ``log`` says ``expected`` (while ``process``, if given, runs)."""

    def read() -> str:
        assert process is None or process.poll() is None, log.read_text(errors="replace")
        return ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""

    def seen(text: str) -> bool:
        return expected in text if isinstance(expected, str) else bool(expected.search(text))

    eventually(read, seen, timeout_s=timeout_s, every_s=0.3, what=f"{expected!r} in the log")
