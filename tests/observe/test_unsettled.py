"""The book of a partition's calls sent and not settled: what it hands over as lost, once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.models import SentCall, Usage
from streams.observe.unsettled import Unsettled

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def sent(call_id: str, *, settle_in_s: float = 60) -> SentCall:
    return SentCall(
        call_id=call_id,
        job_id=f"job-{call_id}",
        tenant="default",
        provider="openai",
        model="gpt-5.4-mini",
        attempt=1,
        lane="live",
        estimate=Usage(input_tokens=300, output_tokens=1024, cost_usd=0.002),
        price_version="2026-12",
        worker="host:1",
        sent_at=T0,
        settle_by=T0 + timedelta(seconds=settle_in_s),
    )


def test_a_call_settled_is_never_lost_and_one_unsettled_is_lost_once_past_its_time() -> None:
    book = Unsettled()
    for call_id in ("a", "b", "c"):
        book.sent(sent(call_id))
    book.settled(["b"])
    assert book.lost(T0 + timedelta(seconds=59)) == []
    assert [c.call_id for c in book.lost(T0 + timedelta(seconds=61))] == ["a", "c"]
    assert book.lost(T0 + timedelta(seconds=120)) == [], "handed over once"
    assert len(book) == 0


def test_a_record_read_after_the_event_that_settles_it_stays_settled() -> None:
    book = Unsettled()
    book.settled(["late"])
    book.sent(sent("late"))
    assert len(book) == 0
    assert book.lost(T0 + timedelta(days=1)) == []


def test_the_estimate_of_a_lost_call_is_its_most_and_settles_its_record() -> None:
    call = sent("a").lost()
    assert (call.outcome, call.usage_estimated, call.call_id) == ("worker_lost", True, "a")
    assert call.usage.cost_usd == 0.002
    assert (call.job_id, call.at, call.latency_ms) == ("job-a", T0, 0.0)
    assert call.error_message is not None
    assert "host:1" in call.error_message
