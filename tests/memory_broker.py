"""A Producer that keeps what it is sent, for unit tests of the writers: which records an
outcome makes, on which topics, with which keys and headers, without a broker."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import KafkaConnectionError, MessageSizeTooLargeError


@dataclass(frozen=True)
class Sent:
    topic: str
    key: bytes | None
    value: bytes | None
    partition: int | None
    headers: Mapping[str, bytes] | None


class MemoryBroker:
    def __init__(self) -> None:
        self.sent: list[Sent] = []
        self.too_large: set[str] = set()  # topics whose records are refused for good
        self.away_for = 0  # this many sends fail as a broker away would, then it is back

    async def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        *,
        partition: int | None = None,
        headers: Mapping[str, bytes] | None = None,
    ) -> Awaitable[object]:
        if topic in self.too_large:
            raise MessageSizeTooLargeError()
        delivery: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        if self.away_for > 0:
            self.away_for -= 1
            delivery.set_exception(KafkaConnectionError("broker away"))
            return delivery
        self.sent.append(Sent(topic, key, value, partition, headers))
        delivery.set_result(None)
        return delivery

    def topics(self) -> list[str]:
        return [s.topic for s in self.sent]

    def on(self, topic: str) -> list[dict[str, Any]]:
        """The values sent to ``topic``, as JSON (tombstones left out)."""
        return [json.loads(s.value) for s in self.sent if s.topic == topic and s.value]
