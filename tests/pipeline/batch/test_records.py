"""Reading the batch lane back after a worker stopped between two of its writes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streams.models import OriginalRecord, RawJob
from streams.pipeline.batch.records import LaneBatch, LaneJob, PartitionState, settle

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _job(source: str) -> LaneJob:
    return LaneJob(
        source=source,
        job=RawJob(job_id=source, title="t", description="d"),
        original=OriginalRecord(topic="raw", partition=0, offset=0, key=source, value="{}"),
        provider="openai",
        model="m",
        size=1,
        due_at=NOW + timedelta(hours=1),
    )


def _batch(local_id: str, *sources: str, at: int, vendor_id: str | None = None) -> LaneBatch:
    return LaneBatch(
        local_id=local_id,
        provider="openai",
        model="m",
        jobs={f"r{n}": _job(s) for n, s in enumerate(sources)},
        intent_at=NOW + timedelta(seconds=at),
        vendor_id=vendor_id,
    )


def test_a_job_in_a_batch_is_not_waiting_any_more() -> None:
    state = PartitionState(pending={"a": _job("a"), "b": _job("b")})
    state.batches = {"x": _batch("x", "a", at=0, vendor_id="batch_1")}
    settle(state)
    assert set(state.pending) == {"b"}


def test_a_job_in_two_unsent_batches_stays_in_the_newer_only() -> None:
    refused = _batch("old", "a", "b", at=0)
    halves = [_batch("h1", "a", at=1), _batch("h2", "b", at=1)]
    state = PartitionState(batches={b.local_id: b for b in [refused, *halves]})
    settle(state)
    assert set(state.batches) == {"h1", "h2"}, "the refused batch, emptied, is gone"
    assert [j.source for j in state.batches["h1"].jobs.values()] == ["a"]


def test_a_job_an_earlier_version_wrote_reads_under_the_tickets_names() -> None:
    job = _job("a")
    written = job.model_dump(mode="json")
    written["accepted_at"] = written.pop("taken_at")
    written["deadline_at"] = written.pop("due_at")
    assert LaneJob.model_validate(written) == job
