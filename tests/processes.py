"""Worker processes for tests that need the real thing: ``llm-streams worker``."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx


@contextlib.contextmanager
def worker_process(env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A worker with ``env``; yields once its web view reports assigned partitions, and
    stops it with SIGTERM (a clean shutdown) at the end."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streams", "worker"],
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}/health"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()[-3000:]
            with contextlib.suppress(httpx.HTTPError, ValueError):
                if httpx.get(url, timeout=1).json().get("assigned_partitions"):
                    break
            time.sleep(0.3)
        else:
            raise AssertionError(f"worker not ready:\n{log.read_text()[-3000:]}")
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
