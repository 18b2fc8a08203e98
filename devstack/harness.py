"""Scaffolding for tests and benchmarks: the simulator in a background thread (tests) or as
its own process (benchmarks, so it does not share the measured process's GIL), both driven
over HTTP; a worker as a child process; topic names that keep runs apart on one broker."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from devstack.supervisor import wait_until_consuming
from llm_sim.server import DEFAULT_API_KEY, Simulator, base_urls, serve
from streams.config.settings import Settings
from streams.registry import SPECS


class SimulatorClient:
    """Talks to a running simulator: its providers' environment, faults and stats."""

    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        keys = {spec.key_variable: DEFAULT_API_KEY for spec in SPECS.values()}
        return base_urls("127.0.0.1", self.port) | keys

    def set_faults(self, provider: str, **faults: Any) -> None:
        response = httpx.put(f"{self.url}/_sim/faults/{provider}", json=faults)
        response.raise_for_status()

    def set_labels(self, jsonl: str) -> None:
        """Answer from an evaluation set's labels ("": from the keyword rules again)."""
        httpx.put(f"{self.url}/_sim/labels", content=jsonl).raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.url}/_sim/faults").raise_for_status()
        httpx.delete(f"{self.url}/_sim/stats").raise_for_status()
        self.set_labels("")

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/_sim/stats").json()
        return data

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = self.stats()["requests"]
        return counts


class SimulatorThread(SimulatorClient):
    """The simulator on its own event loop in a thread, so tests and benchmarks running
    their own event loops can all use it. Faults change over HTTP, through the same control
    API a person would use."""

    def __init__(self, *, seed: int = 7) -> None:
        self.simulator = Simulator(api_key=DEFAULT_API_KEY, seed=seed)
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self.port = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner, self.port = self._loop.run_until_complete(serve(self.simulator))
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> SimulatorThread:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


class SimulatorProcess(SimulatorClient):
    """``llm-streams simulator`` in a child process."""

    def __init__(self, *, seed: int = 7) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "llm_sim", "--seed", str(seed)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().strip()  # OPENAI_BASE_URL=http://host:port/..
        self.port = int(first.split("=", 1)[1].split("/")[2].split(":")[1])

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(10)


def max_in_a_minute(arrivals: list[float]) -> int:
    """The most requests that arrived in any sliding 60-second window."""
    times = sorted(arrivals)
    most, first = 0, 0
    for last, t in enumerate(times):
        while times[first] <= t - 60:
            first += 1
        most = max(most, last - first + 1)
    return most


@contextlib.contextmanager
def worker_process(
    env: dict[str, str], log: Path, *, checkout: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``llm-streams worker`` with ``env`` (over this environment), output to ``log``; yields
    once its web view reports assigned partitions, and stops it with SIGTERM (a clean
    shutdown) at the end. ``checkout`` runs another checkout's worker (with its own
    ``.venv``), e.g. an earlier commit's for a before/after. For tests and benchmarks."""
    python = str(checkout / ".venv" / "bin" / "python") if checkout else sys.executable
    with log.open("ab") as out:
        process = subprocess.Popen(
            [python, "-m", "streams", "worker"],
            cwd=checkout,
            env=os.environ | env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}/health"
        if not wait_until_consuming(url, process, timeout_s=90):
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


def isolated_topics_env(prefix: str) -> dict[str, str]:
    """Environment naming every topic ``<prefix>.<role>`` (e.g. ``t1.raw``): separate runs
    (tests, benchmarks) on one broker then share nothing, whatever topics get added."""
    return {
        name.upper(): f"{prefix}.{name.removeprefix('llm_topic_').replace('_', '-')}"
        for name, field in Settings.model_fields.items()
        if name.startswith("llm_topic_") and field.annotation is str
    }
