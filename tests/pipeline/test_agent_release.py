"""The agent's records at a rebalance, without a broker: a record whose work was cancelled
before it started is worked on when it comes round again, not acked as a duplicate."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from streams.pipeline.acks import InOrderAcks
from streams.pipeline.agent import AgentRecords


def _event(offset: int) -> Any:
    return SimpleNamespace(message=SimpleNamespace(topic="raw", partition=0, offset=offset))


# The work cancelled before it started is never awaited, which Python says when it is
# collected: that is the case under test.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_a_record_released_before_its_work_started_is_worked_on_when_it_comes_back() -> None:
    async def ack(event: Any) -> None:
        raise AssertionError("nothing is acked: the record is given back")

    async def crash(exc: BaseException) -> None:
        raise exc

    window = InOrderAcks(limit=4, ack=ack, on_failure=crash)
    router = SimpleNamespace(on_the_wire=lambda task: False, take_abandoned=lambda: [])

    async def abandoned(calls: Any) -> None:
        return None

    outcomes = SimpleNamespace(publishing=lambda task: False, abandoned=abandoned)
    pipeline = SimpleNamespace(live=SimpleNamespace(router=router), outcomes=outcomes)
    records = AgentRecords(window=window, pipeline=pipeline, published=None, consumer=None)  # type: ignore[arg-type]
    worked: list[int] = []

    async def work() -> None:
        worked.append(1)

    key = ("raw", 0, 7)
    records.working.add(key)
    assert await window.submit(_event(7), records._tracked(work(), key))
    given_back = await records.release(grace_s=0)  # before the task took its first step
    assert [m.offset for m in given_back] == [7]
    assert worked == []
    assert key not in records.working, "so the record, come round again, is worked on"
    await asyncio.sleep(0)
