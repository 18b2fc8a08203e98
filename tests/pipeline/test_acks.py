"""Records acknowledged strictly in arrival order, at most N in flight."""

from __future__ import annotations

import asyncio

from streams.pipeline.acks import InOrderAcks


def _window(limit: int) -> tuple[InOrderAcks, list[int], asyncio.Event]:
    """A window, the events it acked in order, and whether it reported a failure."""
    acked: list[int] = []
    failed = asyncio.Event()

    async def ack(event: int) -> None:
        acked.append(event)

    async def fail(exc: BaseException) -> None:
        failed.set()

    return InOrderAcks(limit=limit, ack=ack, on_failure=fail), acked, failed


async def test_a_slow_record_holds_back_the_acks_of_those_after_it() -> None:
    window, acked, failed = _window(3)
    slow = asyncio.Event()

    async def work(wait: asyncio.Event | None) -> None:
        if wait is not None:
            await wait.wait()

    await window.submit(1, work(slow))
    await window.submit(2, work(None))
    await window.submit(3, work(None))
    await asyncio.sleep(0.01)
    assert acked == [], "2 and 3 are done, but 1 is not"
    slow.set()
    async with asyncio.timeout(1):
        while len(acked) < 3:  # noqa: ASYNC110
            await asyncio.sleep(0)
    assert acked == [1, 2, 3]
    assert not failed.is_set()
    await window.close()


async def test_no_more_than_the_limit_is_in_flight() -> None:
    window, _, _ = _window(2)
    gate = asyncio.Event()
    await window.submit(1, gate.wait())
    await window.submit(2, gate.wait())
    third = asyncio.create_task(window.submit(3, asyncio.sleep(0)))
    await asyncio.sleep(0.01)
    assert not third.done(), "the third waits for a slot"
    gate.set()
    async with asyncio.timeout(1):
        await third
    await window.close()


async def test_a_bug_stops_the_acks_and_says_so() -> None:
    async def broken() -> None:
        raise RuntimeError("bug")

    window, acked, failed = _window(4)
    await window.submit(1, asyncio.sleep(0))
    await window.submit(2, broken())
    await window.submit(3, asyncio.sleep(0))
    async with asyncio.timeout(1):
        await failed.wait()
    await asyncio.sleep(0.01)
    assert acked == [1], "nothing past the failed record is acked"
    await window.close()


async def test_a_release_gives_back_at_once_what_is_not_on_the_wire_the_rest_after_a_grace() -> (
    None
):
    window, acked, _ = _window(8)
    wire: set[asyncio.Task[object]] = set()
    answered = asyncio.Event()

    async def call(answer_in_s: float) -> None:
        task = asyncio.current_task()
        assert task is not None
        wire.add(task)
        await asyncio.sleep(answer_in_s)
        answered.set()

    await window.submit(1, call(0.05))  # on the wire, answers within the grace
    await window.submit(2, asyncio.Event().wait())  # waiting for a rate-limit slot
    await window.submit(3, call(10))  # on the wire, too slow
    await asyncio.sleep(0)
    released = await window.release(
        on_the_wire=lambda task: task in wire, publishing=lambda task: False, grace_s=0.3
    )
    assert answered.is_set()
    assert acked == [1], "finished within the grace, and first: acked"
    assert released == [2, 3], "the rest given back unacknowledged"
    late = asyncio.sleep(0)
    assert await window.submit(4, late), "the window takes records again"
    async with asyncio.timeout(1):
        while acked != [1, 4]:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await window.close()


async def test_a_record_waiting_for_a_slot_during_a_release_is_given_back_too() -> None:
    window, _, _ = _window(1)
    await window.submit(1, asyncio.Event().wait())
    waiting = asyncio.create_task(window.submit(2, asyncio.sleep(0)))
    await asyncio.sleep(0.01)
    await window.release(on_the_wire=lambda task: False, publishing=lambda task: False, grace_s=0)
    assert await waiting is False, "not started: it belonged to the records given back"
    await window.close()


async def test_an_outcome_being_published_is_never_cut_short() -> None:
    """Its records could reach the broker after the partition's next owner looked for
    them: the release waits for it, past the grace."""

    window, _, _ = _window(2)
    publishing: set[asyncio.Task[object]] = set()
    published = asyncio.Event()

    async def publish() -> None:
        task = asyncio.current_task()
        assert task is not None
        publishing.add(task)
        await asyncio.sleep(0.2)
        published.set()

    await window.submit(1, publish())
    await asyncio.sleep(0)
    await window.release(
        on_the_wire=lambda task: False, publishing=lambda task: task in publishing, grace_s=0.01
    )
    assert published.is_set()
    await window.close()


async def test_a_record_taken_before_a_release_and_submitted_after_it_is_not_started() -> None:
    """The agent takes a record, waits for capacity, and meanwhile a rebalance gives the
    window's records back, that one with them: it must not be started after all."""

    window, _, _ = _window(4)
    taken_in = window.releases
    await window.release(on_the_wire=lambda task: False, publishing=lambda task: False, grace_s=0)
    started = asyncio.Event()

    async def work() -> None:
        started.set()

    assert await window.submit(1, work(), taken_in=taken_in) is False
    await asyncio.sleep(0)
    assert not started.is_set()
    assert await window.submit(2, asyncio.sleep(0), taken_in=window.releases)
    await window.close()
