"""The one deadline value: what is left, what it allows, its per-attempt cap, and how running
out is reported at the bottom."""

from __future__ import annotations

import asyncio

import pytest

from streams.deadline import MIN_ATTEMPT_S, Deadline
from streams.errors import DeadlineExceeded, EnrichmentFailed
from tests.routing.fake_clock import FakeClock


def test_it_counts_from_its_start_on_its_clock() -> None:
    clock = FakeClock()
    deadline = Deadline.after(10, clock=clock, start=clock.now - 4)  # taken 4 s ago
    assert deadline.left() == 6
    assert deadline.allows(6 - 2 * MIN_ATTEMPT_S)
    assert not deadline.allows(6), "no time would be left for the attempt"
    clock.now += 7
    assert deadline.left() == 0
    assert not deadline.allows()


def test_a_cap_applies_only_when_it_comes_first() -> None:
    clock = FakeClock()
    job = Deadline.after(10, clock=clock)
    attempt = job.capped(3)
    assert attempt.at == clock.now + 3
    assert attempt.job is job
    assert job.capped(30) is job, "the job's deadline comes first"


def test_running_out_is_a_deadline_exceeded_naming_the_jobs_budget() -> None:
    error = Deadline.after(2.5).capped(1).exceeded("waiting")
    assert isinstance(error, DeadlineExceeded)
    assert isinstance(error, EnrichmentFailed), "a dead letter's error type of its own"
    assert "deadline of 2.5s exceeded; waiting" in str(error)


async def test_enforced_raises_deadline_exceeded_for_the_job() -> None:
    with pytest.raises(DeadlineExceeded, match="while sleeping"):
        async with Deadline.after(0.05).enforced("sleeping"):
            await asyncio.sleep(5)


async def test_enforced_raises_timeout_for_an_attempts_cap() -> None:
    with pytest.raises(TimeoutError):
        async with Deadline.after(30).capped(0.05).enforced("sleeping"):
            await asyncio.sleep(5)


async def test_enforced_lets_a_quick_block_through() -> None:
    async with Deadline.after(5).enforced("nothing"):
        await asyncio.sleep(0)
