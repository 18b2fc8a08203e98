"""``llm-streams worker --processes N``: N worker processes of one consumer group on this
machine, one per core, started and stopped together.

One process runs one event loop on one core; the group's partition assignment spreads the
work (and the group-wide limits) over the processes like over machines. Each child gets its
own web port (the first at LLM_SERVICE_PORT, then the next ones), data directory and
name in the group (``LLM_WORKER_ID``). A signal
to the parent goes to every child; when one child exits on its own, the others are stopped
too, and the parent exits with the first failure's code.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["processes_for", "run_fleet"]

POLL_S = 0.2
STOP_TIMEOUT_S = 90.0


def processes_for(value: str) -> int:
    """``auto`` (one per core) or a whole number of processes, at least one."""
    if value == "auto":
        return os.cpu_count() or 1
    count = int(value)
    if count < 1:
        raise ValueError("at least one process")
    return count


def child_env(base: dict[str, str], *, index: int, port: int, data_dir: Path) -> dict[str, str]:
    """Each child's own port, data directory and stable name in the group (this host's name,
    or LLM_WORKER_ID, and its index), so a restarted fleet takes its partitions back
    without a rebalance of the whole group."""
    name = base.get("LLM_WORKER_ID") or socket.gethostname()
    return base | {
        "LLM_SERVICE_PORT": str(port + index),
        "LLM_DATA_DIR": str(data_dir / f"process-{index}"),
        "LLM_WORKER_ID": f"{name}-{index}",
    }


def run_fleet(count: int, *, port: int, data_dir: Path) -> int:
    """Run ``count`` workers until a signal or a child's exit; returns the exit code."""
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env=child_env(dict(os.environ), index=index, port=port, data_dir=data_dir),
        )
        for index in range(count)
    ]
    try:
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(POLL_S)
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failures = [
        child.returncode for child in children if child.returncode not in (0, -signal.SIGTERM)
    ]
    return failures[0] if failures else 0
