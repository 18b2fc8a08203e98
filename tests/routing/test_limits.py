"""Rate limits never exceed their per-minute figure, over any sliding minute."""

from __future__ import annotations

import asyncio

import pytest

from streams.deadline import Deadline
from streams.errors import DeadlineExceeded, RequestTooLarge
from streams.routing.limits import TokenBucket
from tests.routing.fake_clock import FakeClock


@pytest.mark.parametrize("per_minute", [1, 7, 60, 600, 10_000])
async def test_no_sliding_minute_sees_more_than_the_limit(per_minute: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=per_minute, clock=clock, sleep=clock.sleep)
    taken: list[float] = []
    forever = Deadline.after(1e9, clock=clock)

    async def one() -> None:
        await bucket.take(1, deadline=forever)
        taken.append(clock.now)

    await asyncio.gather(*(one() for _ in range(200)))  # 200 at once
    assert len(taken) == 200
    for i, start in enumerate(taken):
        in_window = sum(1 for t in taken[i:] if t < start + 60)
        assert in_window <= per_minute
    # and it is not needlessly slow: the long-run rate is within 3% of the limit
    if len(taken) > per_minute:
        elapsed_min = (taken[-1] - taken[0]) / 60
        assert (len(taken) - bucket.capacity) / elapsed_min >= per_minute * 0.97


async def test_tokens_not_used_are_given_back() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=6000, clock=clock, sleep=clock.sleep)
    forever = Deadline.after(1e9, clock=clock)
    await bucket.take(100, deadline=forever)  # the whole bucket
    assert bucket.delay_for(60) > 0
    bucket.give_back(60)
    assert bucket.delay_for(60) == 0
    with pytest.raises(RequestTooLarge):
        await bucket.take(101, deadline=forever)


async def test_a_wait_past_the_deadline_is_not_started() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=60, clock=clock, sleep=clock.sleep)  # one a second
    deadline = Deadline.after(0.5, clock=clock)
    await bucket.take(1, deadline=deadline)
    with pytest.raises(DeadlineExceeded, match="rate limit"):
        await bucket.take(1, deadline=deadline)
    assert clock.sleeps == [], "it fails at once instead of sleeping into the deadline"
