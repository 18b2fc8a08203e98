"""Rate limits never exceed their per-minute figure, over any sliding minute."""

from __future__ import annotations

import asyncio

import pytest

from streams.config.slices import LimitsConfig
from streams.deadline import Deadline
from streams.errors import DeadlineExceeded, RequestTooLarge
from streams.routing.limits import ProviderLimiter, Share, Slots, TokenBucket
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


@pytest.mark.parametrize("split", [(8,), (4, 4), (3, 3, 2), (2, 2, 2, 2), (1, 1, 1, 5)])
def test_the_shares_of_a_group_never_add_up_to_more_than_the_limit(split: tuple[int, ...]) -> None:
    for limit in (8, 9, 100, 1799):
        total = sum(Share(held=held, of=sum(split)).of_limit(limit) for held in split)
        assert limit - len(split) < total <= limit


async def test_a_bucket_that_grows_keeps_its_level_and_one_that_shrinks_is_capped() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=600, clock=clock, sleep=clock.sleep)  # 10 a second
    forever = Deadline.after(1e9, clock=clock)
    for _ in range(10):
        await bucket.take(1, deadline=forever)
    bucket.resize(6000)  # a partition gained: no new burst, only a faster refill
    assert bucket.delay_for(1) > 0
    clock.now += 1
    assert bucket.delay_for(100) == pytest.approx(0, abs=0.02)
    bucket.resize(60)  # a partition lost: what it holds is capped at the new size
    assert bucket.delay_for(2) > 0
    assert bucket.delay_for(1) == 0


async def test_no_share_means_no_call_here() -> None:
    clock = FakeClock()
    bucket = TokenBucket(per_minute=0, clock=clock, sleep=clock.sleep)
    with pytest.raises(DeadlineExceeded, match="no share"):
        await bucket.take(1, deadline=Deadline.after(30, clock=clock))


async def test_slots_that_shrink_admit_no_one_until_enough_are_free() -> None:
    slots = Slots(2)
    await slots.acquire()
    await slots.acquire()
    slots.resize(1)
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()
    await asyncio.sleep(0)
    assert not waiting.done(), "one still in use: the new size is full"
    slots.release()
    await asyncio.wait_for(waiting, 1)
    assert slots.in_use == 1
    slots.resize(3)
    await asyncio.wait_for(slots.acquire(), 1)


async def test_a_cancelled_waiter_passes_its_turn_on() -> None:
    slots = Slots(1)
    await slots.acquire()
    first = asyncio.create_task(slots.acquire())
    second = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # wakes the first ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.sleep(0)
    await asyncio.wait_for(second, 1)
    assert slots.in_use == 1


async def test_a_freed_slot_goes_to_the_longest_waiter_not_a_newcomer() -> None:
    slots = Slots(1)
    await slots.acquire()
    waiting = asyncio.create_task(slots.acquire())
    await asyncio.sleep(0)
    slots.release()  # handed to the waiter ...
    newcomer = asyncio.create_task(slots.acquire())  # ... before this one can take it
    await asyncio.sleep(0)
    assert waiting.done()
    assert not newcomer.done()
    slots.release()
    await asyncio.wait_for(newcomer, 1)


async def test_a_limits_change_counts_the_calls_already_in_flight() -> None:
    """A concurrency cap set or lowered at run time holds at once: the calls in flight keep
    their slots in the same limiter, so a newcomer waits until they are under the new cap."""
    clock = FakeClock()
    limiter = ProviderLimiter(LimitsConfig(), clock=clock, sleep=clock.sleep)
    forever = Deadline.after(1e9, clock=clock)
    release = asyncio.Event()
    holding = 0

    async def call() -> None:
        nonlocal holding
        async with limiter.call(tokens=1, deadline=forever):
            holding += 1
            await release.wait()
            holding -= 1

    first = [asyncio.create_task(call()) for _ in range(3)]
    await asyncio.sleep(0)
    assert holding == 3, "no limit yet"
    limiter.reconfigure(LimitsConfig(concurrency=2))
    assert limiter.effective()["concurrency"] == 2
    late = asyncio.create_task(call())
    await asyncio.sleep(0.01)
    assert holding == 3, "the newcomer waits: three are in flight under a cap of two"
    release.set()
    await asyncio.gather(*first, late)
    assert holding == 0
    limiter.reconfigure(LimitsConfig(rpm=60))
    assert limiter.effective() == {"rpm": 60, "tpm": None, "concurrency": None}


async def test_many_waiters_cancelled_at_once_leave_the_slots_whole() -> None:
    """A rebalance gives back every job waiting for a slot at once: cancelled waiters a
    wake-up already dropped must not break the others."""
    slots = Slots(1)
    await slots.acquire()
    waiters = [asyncio.create_task(slots.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    for task in waiters[:4]:
        task.cancel()
    slots.release()  # wakes the first live waiter, dropping the cancelled ones on the way
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert [isinstance(r, asyncio.CancelledError) for r in results] == [True] * 4 + [False]
    assert slots.in_use == 1
    slots.release()
    assert slots.in_use == 0
