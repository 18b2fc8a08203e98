"""Rate limits never exceed their per-minute figure, over any sliding minute."""

from __future__ import annotations

import asyncio

import pytest

from streams.limits import TokenBucket, TooLarge
from tests.test_router import FakeClock


@pytest.mark.parametrize("per_minute", [1, 7, 60, 600, 10_000])
async def test_no_sliding_minute_sees_more_than_the_limit(per_minute: int) -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=per_minute, clock=clock, sleep=clock.sleep)
    taken: list[float] = []

    async def one() -> None:
        await bucket.take(1)
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
    await bucket.take(100)  # the whole bucket
    assert bucket.delay_for(60) > 0
    bucket.give_back(60)
    assert bucket.delay_for(60) == 0
    with pytest.raises(TooLarge):
        await bucket.take(101)
