"""The one restart policy every reader runs under (the readers themselves are exercised on
the real broker by the tests of what they feed: control, cache, spend, dead letters)."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.errors import KafkaConnectionError

from streams.kafka import readers
from streams.kafka.readers import Follower, Supervisor, retried


class Flaky(Follower):
    """Fails with a Kafka error, then with a bug, then reads until cancelled."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__()
        self.starts = 0

    async def follow(self) -> None:
        self.starts += 1
        if self.starts == 1:
            raise KafkaConnectionError("broker away")
        if self.starts == 2:
            raise RuntimeError("a bug")
        self.ready.set()
        await asyncio.Event().wait()


@pytest.fixture(autouse=True)
def no_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(readers, "RESTART_DELAY_S", 0.0)


async def test_a_follower_is_started_over_after_any_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    flaky, calm = Flaky(), Flaky()
    calm.starts = 2  # reads at once
    supervisor = Supervisor([flaky, calm])
    running = asyncio.create_task(supervisor.run())
    async with asyncio.timeout(5):
        await supervisor.ready()
    running.cancel()
    assert flaky.starts == 3
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "flaky interrupted (KafkaConnectionError: broker away); starting over" in messages
    assert "flaky failed; starting over" in messages


async def test_a_one_off_read_is_retried_until_it_answers() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise KafkaConnectionError("away")
        return 42

    assert await retried("reading", read) == 42


async def test_cancelling_stops_a_retry_loop() -> None:
    async def never() -> None:
        raise KafkaConnectionError("away")

    task = asyncio.create_task(retried("reading", never))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
