"""Guarantees under failure, on the real broker: nothing is lost."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import signal
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorThread, isolated_topics_env, worker_process
from streams.app import create_app
from streams.config.settings import Settings, load_settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import read_to_end
from streams.models import DeadLetter
from tests.eventually import eventually, eventually_async
from tests.kafka_helpers import (
    committed,
    consume,
    end_offsets,
    job_record,
    produce,
)

pytestmark = pytest.mark.slow


async def _job_ids(bootstrap: str, topic: str) -> Counter[str]:
    return Counter(
        json.loads(r.value)["job_id"]
        for r in await read_to_end(KafkaCluster.plaintext(bootstrap), topic)
    )


async def _positions(bootstrap: str, topic: str) -> dict[str, tuple[int, int]]:
    """Each record's key and where it sits: key -> (partition, offset)."""
    records = await read_to_end(KafkaCluster.plaintext(bootstrap), topic)
    return {r.key.decode(): (r.partition, r.offset) for r in records}


def _backlog_under_way(env: dict[str, str], prefix: str, jobs: int) -> tuple[set[str], int]:
    """Publish ``jobs`` jobs and wait until 300 are enriched (hundreds more are then in
    flight); their ids, and how many were enriched by then."""
    job_ids = [f"{prefix}{n}" for n in range(jobs)]
    asyncio.run(
        produce(
            env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"], [job_record(j) for j in job_ids]
        )
    )
    return set(job_ids), _wait_for_enriched(env, 300)


def _wait_for_enriched(env: dict[str, str], count: int) -> int:
    """Wait until the enriched topic holds ``count`` records; how many it holds then."""
    return eventually(
        lambda: _records(env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_ENRICHED"]),
        lambda done: done >= count,
        timeout_s=60,
        every_s=0.05,
        what=f"{count} enriched",
    )


def _outputs_when_done(
    env: dict[str, str], jobs: int, *, timeout_s: float = 120
) -> tuple[Counter[str], Counter[str]]:
    """Job ids in the enriched and dead-letter topics once ``jobs`` distinct ones are there,
    or when the time is up (the caller then finds what was lost)."""
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    deadline = time.monotonic() + timeout_s
    while True:
        enriched = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_ENRICHED"]))
        dead = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_DEAD_LETTER"]))
        if len(set(enriched) | set(dead)) >= jobs or time.monotonic() > deadline:
            return enriched, dead


def _busy(worker_env: dict[str, str], sim: SimulatorThread) -> dict[str, str]:
    """Hundreds of jobs in flight: 300 +- 300 ms per provider call, 256 calls at once."""
    sim.set_faults("openai", latency_ms=300, latency_jitter_ms=300)
    return worker_env | {
        "LLM_WORKER_CONCURRENCY": "256",
        "LLM_PROVIDER_LIMITS": '{"openai": {"concurrency": 256}}',
    }


def _lost_and_duplicates(
    job_ids: set[str], enriched: Counter[str], dead: Counter[str]
) -> tuple[set[str], int]:
    """Jobs in neither output topic, and extra enriched copies of jobs."""
    return job_ids - set(enriched) - set(dead), sum(n - 1 for n in enriched.values())


def _records(bootstrap: str, topic: str) -> int:
    return sum(asyncio.run(end_offsets(bootstrap, topic)).values())


def test_a_killed_worker_loses_nothing_and_pays_once(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """SIGKILL with hundreds of jobs done but not committed, then a new worker, with the
    repost cache off: every job ends enriched once, and the only calls paid twice are those
    whose answers died with the first worker."""
    jobs = 2000
    env = _busy(worker_env, sim) | {
        "LLM_BROKER_SESSION_TIMEOUT_S": "6",
        "LLM_CACHE_ENABLED": "false",
        # Commits far apart, so that the kill always finds hundreds done but not committed.
        "LLM_COMMIT_INTERVAL_S": "5",
    }
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    calls_before = sim.requests().get("openai", 0)
    with worker_process(env, tmp_path / "first.log") as first:
        job_ids, done = _backlog_under_way(env, "k", jobs)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    at_kill = _records(bootstrap, env["LLM_TOPIC_ENRICHED"])
    redone = at_kill - sum(
        asyncio.run(committed(bootstrap, env["LLM_APP_ID"], env["LLM_TOPIC_RAW"])).values()
    )
    # Calls the first worker made whose outcome never reached the broker: in flight at the
    # kill, or answered and not yet published.
    cut_off = sim.requests()["openai"] - calls_before - at_kill
    with worker_process(env, tmp_path / "second.log"):
        enriched, dead = _outputs_when_done(env, jobs)
    lost, duplicates = _lost_and_duplicates(job_ids, enriched, dead)
    paid_twice = sim.requests()["openai"] - calls_before - jobs
    print(
        f"\n[crash] jobs {jobs}, enriched when killed {at_kill} (seen {done}), "
        f"done but not committed {redone}, enriched {len(enriched)}, "
        f"dead-lettered {len(dead)}, lost {len(lost)}, published twice {duplicates}, "
        f"calls cut off by the kill {cut_off}, paid twice {paid_twice}"
    )
    assert at_kill < jobs, "the kill came while jobs were in flight"
    assert redone >= 100, "hundreds of jobs to redo"
    assert lost == set()
    assert dead == Counter(), "no job failed: the simulator was healthy"
    assert duplicates == 0
    assert paid_twice <= cut_off


def test_sigterm_drains_in_flight_jobs_and_exits_0(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """SIGTERM with hundreds of jobs in flight: the worker exits 0 in bounded time, having
    committed no job it did not publish; a new worker finishes the backlog and nothing is lost."""
    jobs = 2000
    env = _busy(worker_env, sim)
    bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
    log = tmp_path / "first.log"
    with worker_process(env, log) as first:
        _backlog_under_way(env, "t", jobs)
        first.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = first.wait(60)
        stopped_in_s = time.monotonic() - started
    assert code == 0, log.read_text()[-3000:]
    assert stopped_in_s < 20, f"took {stopped_in_s:.1f} s to stop"
    published = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_ENRICHED"]))
    committed_offsets = asyncio.run(committed(bootstrap, env["LLM_APP_ID"], raw))
    positions = asyncio.run(_positions(bootstrap, raw))
    committed_unpublished = [
        job
        for job, (partition, offset) in positions.items()
        if offset < committed_offsets.get(partition, 0) and job not in published
    ]
    assert committed_unpublished == []

    with worker_process(env, tmp_path / "second.log"):
        enriched, dead = _outputs_when_done(env, jobs)
    lost, duplicates = _lost_and_duplicates(set(positions), enriched, dead)
    print(
        f"\n[sigterm] jobs {jobs}, published before exit {len(published)}, committed "
        f"{sum(committed_offsets.values())}, stopped in {stopped_in_s:.1f} s; after a restart: "
        f"enriched {len(enriched)}, dead-lettered {len(dead)}, lost {len(lost)}, "
        f"duplicates {duplicates}"
    )
    assert len(published) < jobs, "the stop came while jobs were in flight"
    assert lost == set(), sorted(positions[job] for job in lost)
    assert dead == Counter()


def test_a_worker_joining_mid_stream_loses_nothing(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """A second worker joins while the first has hundreds of jobs in flight: the rebalance
    moves a partition (revoke, seek, recovery on both) and every job still ends once."""
    jobs = 2000
    env = _busy(worker_env, sim)
    second_env = env | {
        "LLM_SERVICE_PORT": str(free_port()),
        "LLM_DATA_DIR": str(tmp_path / "second-worker"),
    }
    with worker_process(env, tmp_path / "first.log"):
        job_ids, at_join = _backlog_under_way(env, "j", jobs)
        with worker_process(second_env, tmp_path / "second.log"):
            enriched, dead = _outputs_when_done(env, jobs)
    lost, duplicates = _lost_and_duplicates(job_ids, enriched, dead)
    print(
        f"\n[join] jobs {jobs}, enriched when the second worker started {at_join}, enriched "
        f"{len(enriched)}, dead-lettered {len(dead)}, lost {len(lost)}, duplicates {duplicates}"
    )
    assert lost == set()
    assert dead == Counter()


# Anything a producer might send by mistake: bytes, any JSON, jobs with wrong types.
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
JOB_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "job_id": JSON_VALUES,
        "title": JSON_VALUES,
        "description": JSON_VALUES,
        "options": JSON_VALUES,
        "salary_text": JSON_VALUES,
    },
)
GARBAGE = st.one_of(
    st.binary(max_size=300),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    JOB_FIELDS.map(lambda v: json.dumps(v).encode()),
    st.just(b"[" * 50_000 + b"]" * 50_000),
    st.just("\udcff".encode("utf-8", "surrogatepass")),
)


@settings(max_examples=3, deadline=None, suppress_health_check=list(HealthCheck))
@given(payloads=st.lists(GARBAGE, min_size=40, max_size=40))
def test_fuzzed_input_is_dead_lettered_and_the_worker_carries_on(
    worker_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    sim: SimulatorThread,
    payloads: list[bytes],
) -> None:
    import uuid

    run = uuid.uuid4().hex[:8]
    env = worker_env | isolated_topics_env(f"fuzz{run}") | {"LLM_APP_ID": f"fuzz{run}"}
    bootstrap = env["KAFKA_BOOTSTRAP_SERVERS"]
    marker = job_record("after-the-garbage")
    records: list[tuple[bytes | None, bytes]] = [(b"fuzz", p) for p in payloads]
    records.append(marker)
    with worker_process(env, tmp_path_factory.mktemp("fuzz") / "worker.log") as worker:
        asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], records))

        def finished() -> int:
            assert worker.poll() is None, "the worker crashed"
            return _records(bootstrap, env["LLM_TOPIC_ENRICHED"]) + _records(
                bootstrap, env["LLM_TOPIC_DEAD_LETTER"]
            )

        eventually(
            finished,
            lambda done: done >= len(records),
            timeout_s=60,
            what="every record enriched or dead-lettered (none missing)",
        )
        assert worker.poll() is None
    enriched = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_ENRICHED"]))
    assert "after-the-garbage" in enriched


def _lines_between(log: str, first: datetime, last: datetime) -> list[str]:
    """The log lines stamped from ``first`` to ``last`` (Faust's format, local time)."""
    lines = []
    for line in log.splitlines():
        with contextlib.suppress(ValueError):
            if first <= datetime.strptime(line[1:24], "%Y-%m-%d %H:%M:%S,%f") <= last:
                lines.append(line)
    return lines


def test_the_worker_rides_out_a_broker_restart(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """Stop the broker for 20 s mid-stream and start it again on the same data: the worker
    says so in a few log lines, recovers by itself, and every job ends somewhere."""
    from devstack.broker import LocalKafka

    jobs = 400
    sim.set_faults("openai", latency_ms=100, latency_jitter_ms=100)
    kafka = LocalKafka(data_dir=tmp_path / "kafka")
    kafka.start()
    try:
        env = worker_env | {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers}
        bootstrap = kafka.bootstrap_servers
        with worker_process(env, tmp_path / "worker.log") as worker:
            records = [job_record(f"r{n}") for n in range(jobs)]
            asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], records))
            _wait_for_enriched(env, 50)
            stopped_at = datetime.now()
            kafka.stop()
            time.sleep(20)
            kafka.start()
            outage = (stopped_at, datetime.now())
            assert kafka.bootstrap_servers == bootstrap, "same port, same data"

            def outputs() -> tuple[Counter[str], Counter[str], bool]:
                assert worker.poll() is None, "the worker died"
                back = "broker reachable again" in (tmp_path / "worker.log").read_text()
                enriched = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_ENRICHED"]))
                dead = asyncio.run(_job_ids(bootstrap, env["LLM_TOPIC_DEAD_LETTER"]))
                return enriched, dead, back

            enriched, dead, _ = eventually(
                outputs,
                lambda found: len(set(found[0]) | set(found[1])) == jobs and found[2],
                timeout_s=180,
                what=f"all {jobs} jobs out and the broker said back",
            )
        lost, duplicates = _lost_and_duplicates({f"r{n}" for n in range(jobs)}, enriched, dead)
        log = (tmp_path / "worker.log").read_text()  # whole once the worker has stopped
        outage_lines = _lines_between(log, *outage)
        print(
            f"\n[broker restart] jobs {jobs}, enriched {len(enriched)}, dead {len(dead)}, "
            f"lost {len(lost)}, duplicates {duplicates}, "
            f"log lines during the 20 s outage {len(outage_lines)}"
        )
        assert lost == set()
        assert len(outage_lines) <= 40, "\n".join(outage_lines[:40])
        failed = re.search(r"broker reachable again after \d+s \((\d+) failed attempts\)", log)
        assert failed is not None, log[-3000:]
        # Reconnects back off (streams.kafka.backoff): without, some 400,000 in 20 s.
        assert int(failed.group(1)) < 10_000
    finally:
        kafka.stop()


def test_a_worker_stops_within_its_shutdown_timeout_with_the_broker_gone(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    """SIGTERM with the broker stopped: the worker exits within LLM_SHUTDOWN_TIMEOUT_S;
    broker and worker restarted, every job ends enriched once."""
    from devstack.broker import LocalKafka

    jobs, bound_s = 300, 5.0
    sim.set_faults("openai", latency_ms=200, latency_jitter_ms=100)
    kafka = LocalKafka(data_dir=tmp_path / "kafka")
    kafka.start()
    try:
        env = worker_env | {
            "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
            "LLM_SHUTDOWN_TIMEOUT_S": str(bound_s),
            "LLM_CACHE_ENABLED": "false",
        }
        bootstrap = kafka.bootstrap_servers
        with worker_process(env, tmp_path / "first.log") as first:
            records = [job_record(f"t{n}") for n in range(jobs)]
            asyncio.run(produce(bootstrap, env["LLM_TOPIC_RAW"], records))
            _wait_for_enriched(env, 50)
            kafka.stop()
            began = time.monotonic()
            first.send_signal(signal.SIGTERM)
            first.wait(120)
            took_s = time.monotonic() - began
        kafka.start()
        with worker_process(env, tmp_path / "second.log"):
            enriched, dead = _outputs_when_done(env, jobs)
        lost, duplicates = _lost_and_duplicates({f"t{n}" for n in range(jobs)}, enriched, dead)
        print(
            f"\n[shutdown, broker gone] stopped in {took_s:.1f}s (bound {bound_s:g}s); "
            f"lost {len(lost)}, published twice {duplicates}"
        )
        assert took_s <= bound_s + 2
        assert lost == set()
        assert duplicates == 0
    finally:
        kafka.stop()


async def test_a_10_mb_description_is_dead_lettered_with_a_reason(
    settings: Settings, sim: SimulatorThread
) -> None:
    """A topic configured for big records delivers a 10 MB description: it is dead-lettered
    at validation with the reason and a bounded copy of the record, and the next job goes on."""
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    big = 16 * 1024 * 1024
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics(
            [
                NewTopic(
                    raw,
                    num_partitions=settings.llm_topic_partitions,
                    replication_factor=1,
                    topic_configs={"max.message.bytes": str(big)},
                )
            ]
        )
    finally:
        await admin.close()
    huge = job_record("huge", description="x" * 10_000_000)
    app = await create_app(settings)
    async with app.running():
        await produce(bootstrap, raw, [huge, job_record("next")], max_request_size=big)
        (letter,) = await consume(bootstrap, settings.llm_topic_dead_letter, count=1)
        (enriched,) = await consume(bootstrap, settings.llm_topic_enriched, count=1)
    dead = DeadLetter.model_validate_json(letter.value)
    assert (dead.job_id, dead.stage) == ("huge", "validate")
    assert "description" in dead.error.message
    assert dead.original.value_truncated
    assert len(letter.value) < 1024 * 1024, "the dead letter fits Kafka's default limit"
    assert json.loads(enriched.value)["job_id"] == "next"


async def test_a_stopping_worker_closes_its_provider_connections(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's HTTP clients close on shutdown: a simulator of its own sees the keep-alive
    connections the jobs used end while this process lives on."""
    own = SimulatorThread().start()
    try:
        for name, value in own.env().items():
            monkeypatch.setenv(name, value)
        settings = load_settings()
        app = await create_app(settings)
        async with app.running():
            await produce(
                settings.kafka_bootstrap_servers,
                settings.llm_topic_raw,
                [job_record(f"close-{n}") for n in range(5)],
            )
            await consume(settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=5)
            assert own.stats()["open_connections"] > 0

        async def all_closed() -> bool:
            return bool(own.stats()["open_connections"] == 0)

        # At once: idle connections would also close by themselves, a few seconds later.
        await eventually_async(all_closed, timeout_s=1, every_s=0.05)
    finally:
        own.stop()


async def test_a_hanging_provider_times_out_and_the_job_moves_on(
    settings: Settings, sim: SimulatorThread
) -> None:
    settings = settings.model_copy(update={"llm_attempt_timeout_s": 1.0, "llm_retry_attempts": 1})
    sim.set_faults("openai", hang_rate=1.0)
    app = await create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, [job_record("h1")])
        (record,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=1
        )
    value = json.loads(record.value)
    assert [(a["provider"], a["outcome"]) for a in value["attempts"]] == [
        ("openai", "timeout"),
        ("deepseek", "success"),
    ]
    assert value["attempts"][0]["latency_ms"] < 1500


async def test_an_outage_of_every_provider_pauses_intake_and_dead_letters_nothing(
    settings: Settings, sim: SimulatorThread
) -> None:
    """Every provider fails retryably: circuits open, intake pauses, jobs in flight wait
    within their deadline; when a provider returns, every job is enriched."""
    settings = settings.model_copy(update={"llm_breaker_cooldown_s": 2.0})
    bootstrap = settings.kafka_bootstrap_servers
    for provider in ("openai", "deepseek"):
        sim.set_faults(provider, errors={503: 1.0})
    jobs = [job_record(f"outage-{n}") for n in range(40)]
    app = await create_app(settings)
    router = app.router
    async with app.running():
        await produce(bootstrap, settings.llm_topic_raw, jobs)

        async def intake_paused() -> bool:
            return router.status().intake_paused

        await eventually_async(intake_paused, timeout_s=20)
        probed = sum(sim.requests().values())

        async def probed_twice_more() -> bool:  # the outage goes on: circuits probe and fail
            return sum(sim.requests().values()) >= probed + 4

        await eventually_async(probed_twice_more, timeout_s=20)
        assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0
        sim.reset()
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=len(jobs))
    assert {json.loads(r.value)["job_id"] for r in enriched} == {f"outage-{n}" for n in range(40)}
    assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0


def _waited_for(log: Path, text: str, *, count: int = 1, timeout_s: float = 60) -> float:
    """Seconds until ``text`` is in ``log`` ``count`` times."""
    began = time.monotonic()
    while log.read_text().count(text) < count:
        assert time.monotonic() - began < timeout_s, f"no {text!r} in:\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    return time.monotonic() - began


def test_a_worker_restarted_under_its_name_takes_its_partitions_back_without_a_rebalance(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    """Static membership: a worker killed and started again under the same LLM_WORKER_ID
    within the session timeout is given its partitions back by the broker; the other
    worker keeps its own throughout (it logs no rebalance)."""
    env = worker_env | {"LLM_TOPIC_PARTITIONS": "4", "LLM_BROKER_SESSION_TIMEOUT_S": "30"}
    first_env = env | {"LLM_WORKER_ID": "first"}
    other_env = env | {"LLM_WORKER_ID": "other", "LLM_SERVICE_PORT": str(free_port())}
    first_log, other_log = tmp_path / "first.log", tmp_path / "other.log"
    with worker_process(first_env, first_log) as first, worker_process(other_env, other_log):
        _waited_for(other_log, "holding 2 of 4 partitions")
        _waited_for(first_log, "holding 2 of 4 partitions")
        rebalances = other_log.read_text().count("rebalance:")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        restarted_log = tmp_path / "restarted.log"
        began = time.monotonic()
        with worker_process(first_env, restarted_log):
            _waited_for(restarted_log, "holding 2 of 4 partitions", timeout_s=25)
            back_in_s = time.monotonic() - began
            assert other_log.read_text().count("rebalance:") == rebalances, other_log.read_text()
    print(f"\n[static membership] restarted worker held its partitions again in {back_in_s:.1f}s")
    assert back_in_s < 25, "within the session timeout, not after it"
