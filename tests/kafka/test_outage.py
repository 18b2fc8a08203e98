"""A broker outage in a few log lines: the first failure, a summary every 30 s, the return."""

from __future__ import annotations

import logging

import pytest

from streams.kafka.outage import OutageLog


def _record(message: str, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka.client", level, __file__, 1, message, (), None)


def test_an_outage_is_one_warning_then_a_summary_every_30_s(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    outage = OutageLog(clock=lambda: now[0])
    starting = _record("Group Coordinator Request failed: GroupCoordinatorNotAvailableError")
    assert outage.filter(starting), "a broker starting up is no outage"
    assert starting.levelname == "INFO"
    assert starting.getMessage().startswith("waiting for the broker to elect")
    again = _record("Group Coordinator Request failed: GroupCoordinatorNotAvailableError")
    assert not outage.filter(again), "said once"
    first = _record("Unable connect to node with id 1: [Errno 111] Connection refused")
    assert outage.filter(first)
    assert first.levelname == "WARNING"
    assert first.getMessage().startswith("broker lost: Unable connect")
    passed = []
    for _ in range(930):  # 30 a second for 31 s
        now[0] += 1 / 30
        passed.append(outage.filter(_record("Unable to update metadata from [1]")))
    assert passed.count(True) == 1, "one summary in 30 s"
    assert not outage.filter(_record("Failed fetch messages from 1: NodeNotReadyError"))
    assert outage.filter(_record("Heartbeat failed: rebalancing", logging.WARNING)), "not ours"
    assert outage.filter(_record("Connected to node 1", logging.INFO)), "below warning"
    with caplog.at_level(logging.INFO, logger="streams.kafka.outage"):
        outage.reachable()
        outage.reachable()
    assert [r.getMessage() for r in caplog.records] == [
        "broker reachable again after 31s (932 failed attempts)"
    ]
    assert outage.lost_at is None
