"""The seek-safe consumer's bookkeeping: which records a seek makes stale.

The race itself is tested end to end on the broker (tests/test_faults.py: a worker restarted
onto a backlog loses nothing); here, the rules it relies on."""

from __future__ import annotations

from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TP

from streams.kafka.transport import Consumer

A, B = TP("jobs", 0), TP("jobs", 1)
CHANGELOG = TP("app-stats-totals-changelog", 0)


class _Thread:
    def __init__(self) -> None:
        self.sought: dict[TP, int] = {}

    async def earliest_offsets(self, *partitions: TP) -> Mapping[TP, int]:
        return dict.fromkeys(partitions, 7)  # the log starts at 7: older records deleted

    def seek(self, partition: TP, offset: int) -> None:
        self.sought[partition] = offset


def _consumer() -> Any:
    consumer: Any = object.__new__(Consumer)  # the bookkeeping only, no broker
    consumer._seek_epoch = 0
    consumer._fetched_in = 0
    consumer._last_seek = {}
    consumer._gap = {A: [1, 2], B: [3]}
    consumer._thread = _Thread()
    consumer.app = SimpleNamespace(tables=SimpleNamespace(changelog_topics={CHANGELOG.topic}))
    return consumer


async def test_a_seek_makes_a_batch_fetched_before_it_stale_for_its_partitions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def committed(self: Any) -> Mapping[TP, int]:
        return {A: 120, B: 0, CHANGELOG: 0}  # aiokafka moves only A

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", committed)
    consumer = _consumer()
    consumer._seek_epoch = 1  # perform_seek counts the seek before it runs
    await consumer.seek_to_committed()
    seek = consumer._sought_since_fetch(A)
    assert seek is not None
    assert seek.offset == 120
    assert A not in consumer._gap, "the sought partition's gaps are forgotten"
    # B has no commit: aiokafka left it where it was, so it is read again from its start,
    # and what was fetched for it before is stale too.
    assert consumer._thread.sought == {B: 7}
    assert consumer._sought_since_fetch(B) == (1, 7)
    assert B not in consumer._gap
    assert consumer._sought_since_fetch(CHANGELOG) is None, "the tables read their own"


async def test_a_batch_fetched_after_the_seek_is_current(monkeypatch: pytest.MonkeyPatch) -> None:
    async def committed(self: Any) -> Mapping[TP, int]:
        return {A: 120}

    monkeypatch.setattr(faust_aiokafka.Consumer, "seek_to_committed", committed)
    consumer = _consumer()
    consumer._seek_epoch = 1
    await consumer.seek_to_committed()
    consumer._fetched_in = 1  # what _getmany records when the next fetch returns
    assert consumer._sought_since_fetch(A) is None
