"""Shared test fixtures: one real Kafka broker and one provider simulator per session.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a testcontainers Kafka when a Docker
engine answers, else the project's own launcher. When none can be had the tests fail and
say why; they never skip.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from streams.broker.launcher import free_port
from streams.settings import KEY_VARIABLES, Settings, load_settings
from streams.simulator import DEFAULT_API_KEY, Simulator, base_urls, serve

ROOT = Path(__file__).resolve().parent.parent


def _docker_answers() -> bool:
    try:
        import docker

        docker.from_env(timeout=5).ping()
    except Exception:
        return False
    return True


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    configured = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        yield configured
        return
    if _docker_answers():
        from testcontainers.kafka import KafkaContainer

        container = (
            KafkaContainer("confluentinc/cp-kafka:7.6.0")
            .with_kraft()
            .with_env("KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "1")
            .with_env("KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "1")
        )
        with container:
            yield container.get_bootstrap_server()
        return
    from streams.broker import BrokerError, LocalKafka

    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka"))
    try:
        bootstrap = kafka.start()
    except BrokerError as exc:
        pytest.fail(f"no Kafka broker for the tests: no Docker engine, and {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        kafka.stop()


class SimulatorThread:
    """The simulator on its own event loop in a thread, so every test's loop can use it.
    Tests change its faults over HTTP, through the same control API a person would use."""

    def __init__(self) -> None:
        self.simulator = Simulator(api_key=DEFAULT_API_KEY, seed=7)
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

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        keys = dict.fromkeys(KEY_VARIABLES.values(), DEFAULT_API_KEY)
        return base_urls("127.0.0.1", self.port) | keys

    def set_faults(self, provider: str, **faults: Any) -> None:
        response = httpx.put(f"{self.url}/_sim/faults/{provider}", json=faults)
        response.raise_for_status()

    def reset(self) -> None:
        httpx.delete(f"{self.url}/_sim/faults").raise_for_status()
        httpx.delete(f"{self.url}/_sim/stats").raise_for_status()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = httpx.get(f"{self.url}/_sim/stats").json()
        return data

    def requests(self) -> dict[str, int]:
        counts: dict[str, int] = self.stats()["requests"]
        return counts


@pytest.fixture(scope="session")
def simulator_thread() -> Iterator[SimulatorThread]:
    sim = SimulatorThread().start()
    yield sim
    sim.stop()


@pytest.fixture
def sim(simulator_thread: SimulatorThread) -> Iterator[SimulatorThread]:
    """The shared simulator, with its faults cleared after the test."""
    yield simulator_thread
    simulator_thread.reset()


@pytest.fixture
def unique() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def worker_env(
    kafka_bootstrap: str, sim: SimulatorThread, unique: str, tmp_path: Path
) -> dict[str, str]:
    """Environment for one test's worker: its own app id, topics and data dir."""
    return sim.env() | {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "LLM_APP_ID": unique,
        "LLM_TOPIC_RAW": f"{unique}.raw",
        "LLM_TOPIC_ENRICHED": f"{unique}.enriched",
        "LLM_TOPIC_DEAD_LETTER": f"{unique}.dead-letter",
        "LLM_TOPIC_CALLS": f"{unique}.calls",
        "LLM_TOPIC_CONTROL": f"{unique}.control",
        "LLM_TOPIC_PARTITIONS": "2",
        "LLM_PROVIDER_CHAIN": "openai,deepseek",
        "LLM_DATA_DIR": str(tmp_path / "worker"),
        "LLM_SERVICE_PORT": str(free_port()),
        "LLM_RETRY_INITIAL_BACKOFF_S": "0.01",
        "LLM_JOB_DEADLINE_S": "20",
        "LLM_ATTEMPT_TIMEOUT_S": "10",
    }


@pytest.fixture
def settings(worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    return load_settings()
