"""The one place Kafka clients are made outside Faust: an admin client, a producer that waits
for every replica, and a group-less consumer that reads partitions it is given."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

_Client = TypeVar("_Client", AIOKafkaProducer, AIOKafkaConsumer)


@contextlib.asynccontextmanager
async def admin(bootstrap_servers: str) -> AsyncIterator[Any]:
    client = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def producer(bootstrap_servers: str) -> contextlib.AbstractAsyncContextManager[AIOKafkaProducer]:
    """Acknowledged by every in-sync replica, and idempotent: a retried send is written once."""
    return _started(
        AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all", enable_idempotence=True)
    )


# A fetch of a busy topic answers as soon as one record is there: a response, and its
# decoding in Python, per few records. A reader that can wait half a second lets the broker
# gather up to a MiB first.
GATHERED = {"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": 500}


def reader(
    bootstrap_servers: str, *, committed_only: bool = False, gathered: bool = False
) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    """A consumer outside any group, committing nothing: it reads what it is assigned
    (``committed_only``: none of an aborted or open transaction's records; ``gathered``:
    records up to half a second late, for fewer fetches of a busy topic)."""
    return _started(
        AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            group_id=None,
            enable_auto_commit=False,
            isolation_level="read_committed" if committed_only else "read_uncommitted",
            **(GATHERED if gathered else {}),
        )
    )


@contextlib.asynccontextmanager
async def _started(client: _Client) -> AsyncIterator[_Client]:
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
