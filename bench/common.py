"""What every benchmark needs: a real broker, the simulator, unique topics, and percentiles."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

from aiokafka import AIOKafkaProducer

from devstack.broker import LocalKafka
from devstack.broker.launcher import free_port
from devstack.harness import SimulatorClient, SimulatorProcess, isolated_topics_env
from streams.config.settings import Settings, load_settings
from streams.kafka.security import client_options
from streams.models import RawJob

# Every run's app id and topics start with it: a secured cluster's ACLs name the prefix.
BENCH_APP_PREFIX = "bench"


@contextlib.contextmanager
def broker() -> Iterator[dict[str, str]]:
    """The variables that reach the cluster: the KAFKA_* settings of this environment when
    KAFKA_BOOTSTRAP_SERVERS is set (TLS and SASL included), else a local broker for the run."""
    if os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        yield {name: value for name, value in os.environ.items() if name.startswith("KAFKA_")}
        return
    with tempfile.TemporaryDirectory() as data, LocalKafka(data_dir=Path(data)) as kafka:
        yield kafka.client_env()


@contextlib.contextmanager
def simulator() -> Iterator[SimulatorProcess]:
    """In its own process: it must not compete with the measured worker for the GIL."""
    sim = SimulatorProcess(seed=11)
    try:
        yield sim
    finally:
        sim.stop()


def run_env(kafka: Mapping[str, str], sim: SimulatorClient) -> dict[str, str]:
    """A worker's variables for one run: fresh topic names (and app id, both starting with
    ``bench``), the cluster ``kafka`` (``broker()``'s variables) and the simulator."""
    run = f"{BENCH_APP_PREFIX}{uuid.uuid4().hex[:8]}"
    return (
        sim.env()
        | isolated_topics_env(run)
        | dict(kafka)
        | {
            "LLM_APP_ID": run,
            "LLM_DATA_DIR": tempfile.mkdtemp(prefix="bench-worker-"),
            "LLM_SERVICE_PORT": str(free_port()),
        }
    )


def settings_for(kafka: Mapping[str, str], sim: SimulatorClient, **overrides: object) -> Settings:
    """Settings of a run (``run_env``), set in this process's environment too."""
    os.environ.update(run_env(kafka, sim))
    return load_settings(**overrides)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def job_line(n: int) -> str:
    """Job number ``n`` as a JSON line."""
    return _job(n).model_dump_json()


def _job(n: int) -> RawJob:
    return RawJob(
        job_id=f"job-{n}",
        title=f"Senior Python Engineer {n}",
        description="5+ years Python and Kafka on AWS. Remote (EU). EUR 80-95k.",
    )


async def produce_jobs(settings: Settings, jobs: int) -> dict[str, float]:
    """Publish ``jobs`` small jobs to the raw topic; when each was sent (epoch seconds)."""
    producer = AIOKafkaProducer(**client_options(settings.cluster()), linger_ms=5)
    await producer.start()
    sent_at: dict[str, float] = {}
    for n in range(jobs):
        job = _job(n)
        sent_at[job.job_id] = time.time()
        await producer.send(
            settings.llm_topic_raw, job.model_dump_json().encode(), key=job.job_id.encode()
        )
    await producer.flush()
    await producer.stop()
    return sent_at
