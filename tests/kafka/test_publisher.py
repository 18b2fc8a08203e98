"""Publishing: every record delivered however long the broker is away, a record refused for
good raised once the others are delivered."""

from __future__ import annotations

import pytest

from streams.errors import PublishRejected
from streams.kafka import publisher
from streams.kafka.publisher import Outgoing, publish_all
from tests.memory_broker import MemoryBroker


@pytest.fixture(autouse=True)
def _no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(publisher, "PUBLISH_BACKOFF_S", (0.0,))


async def test_records_are_sent_again_while_the_broker_is_away() -> None:
    broker = MemoryBroker()
    broker.away_for = 5  # the first call's two sends, then two retries' worth and one more
    records = [Outgoing("a", "k1", b"1", {"h": b"v"}), Outgoing("b", None, None, partition=2)]
    await publish_all(broker, records)
    assert [(s.topic, s.key, s.value, s.headers, s.partition) for s in broker.sent] == [
        ("b", None, None, None, 2),
        ("a", b"k1", b"1", {"h": b"v"}, None),
    ]


async def test_a_record_refused_for_good_is_raised_after_the_others_are_delivered() -> None:
    broker = MemoryBroker()
    broker.too_large = {"big"}
    with pytest.raises(PublishRejected, match="big"):
        await publish_all(broker, [Outgoing("big", "k", b"x"), Outgoing("small", "k", b"y")])
    assert broker.topics() == ["small"]
