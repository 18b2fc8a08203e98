"""The write-ahead record of a call: where it goes, what it says, and that a refusal does
not stop the call."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiokafka.partitioner import DefaultPartitioner

from streams.kafka.topics import Topic
from streams.models import RawJob, SentCall, Usage
from streams.pipeline.sent import SentLog, ledger_partition
from streams.routing.journal import Sending
from tests.memory_broker import MemoryBroker

TOPIC = Topic(name="llm.sent", model=SentCall, partitions=6, compacted=True)


def sending(job_id: str) -> Sending:
    return Sending(
        call_id=f"call-{job_id}",
        job=RawJob(job_id=job_id, title="t", description="d", tenant="acme"),
        provider="openai",
        model="gpt-5.4-mini",
        attempt=2,
        lane="live",
        estimate=Usage(input_tokens=10, output_tokens=20, cost_usd=0.5),
        lasts_s=30.0,
    )


def test_a_job_s_records_go_to_the_partition_of_its_ledger_events() -> None:
    partitions = list(range(6))
    for n in range(200):
        job_id = f"job-{n}"
        expected = DefaultPartitioner()(job_id.encode(), partitions, partitions)
        assert ledger_partition(job_id, 6) == expected


async def test_a_record_names_the_call_and_when_it_is_taken_for_lost() -> None:
    broker = MemoryBroker()
    log = SentLog(topic=TOPIC, producer=broker, price_version="v1", grace_s=120, worker="w:1")
    assert await log.sent(sending("j1"))
    await log.written(["call-j1", "never-sent"])
    (record,) = broker.sent
    assert (record.topic, record.key, record.partition) == (
        "llm.sent",
        b"call-j1",
        ledger_partition("j1", 6),
    )
    call = TOPIC.decode(record.value)
    assert (call.job_id, call.tenant, call.attempt, call.worker) == ("j1", "acme", 2, "w:1")
    assert call.estimate.cost_usd == 0.5
    assert call.settle_by - call.sent_at == timedelta(seconds=150)


async def test_a_refused_record_leaves_the_call_unrecorded_not_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()
    broker.too_large.add("llm.sent")
    log = SentLog(topic=TOPIC, producer=broker, price_version="v1", grace_s=120)
    assert not await log.sent(sending("j1"))
    assert "refused" in caplog.text


async def test_a_record_the_broker_did_not_take_is_said_and_waited_for_no_longer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = MemoryBroker()
    broker.away_for = 1
    log = SentLog(topic=TOPIC, producer=broker, price_version="v1", grace_s=120)
    assert await log.sent(sending("j1"))
    await log.written(["call-j1"])
    await asyncio.sleep(0)  # the acknowledgement's callback
    assert "not written" in caplog.text
