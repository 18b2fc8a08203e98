"""The one place Kafka clients are made outside Faust: an admin client, a producer that waits
for every replica, a transactional producer, a group-less consumer that reads partitions it is
given, and a consumer in a group that commits through transactions. Each connects to the
cluster as ``KafkaCluster`` says (``streams.kafka.security``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from streams.config.slices import KafkaCluster
from streams.kafka.security import client_options

__all__ = ["admin", "group_reader", "producer", "reader", "transactional_producer"]

_Client = TypeVar("_Client", AIOKafkaProducer, AIOKafkaConsumer)


@contextlib.asynccontextmanager
async def admin(cluster: KafkaCluster) -> AsyncIterator[Any]:
    client = AIOKafkaAdminClient(**client_options(cluster))
    await client.start()
    try:
        yield client
    finally:
        await client.close()


def producer(cluster: KafkaCluster) -> contextlib.AbstractAsyncContextManager[AIOKafkaProducer]:
    """Acknowledged by every in-sync replica, and idempotent: a retried send is written once."""
    return _started(
        AIOKafkaProducer(**client_options(cluster), acks="all", enable_idempotence=True)
    )


# A fetch of a busy topic answers as soon as one record is there: a response, and its
# decoding in Python, per few records. A reader that can wait half a second lets the broker
# gather up to a MiB first.
GATHERED = {"fetch_min_bytes": 1 << 20, "fetch_max_wait_ms": 500}


def reader(
    cluster: KafkaCluster, *, committed_only: bool = False, gathered: bool = False
) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    """A consumer outside any group, committing nothing: it reads what it is assigned
    (``committed_only``: none of an aborted or open transaction's records; ``gathered``:
    records up to half a second late, for fewer fetches of a busy topic)."""
    return _consumer(cluster, group_id=None, committed_only=committed_only, gathered=gathered)


def transactional_producer(
    cluster: KafkaCluster, *, transactional_id: str, transaction_timeout_ms: int
) -> contextlib.AbstractAsyncContextManager[AIOKafkaProducer]:
    """Idempotent and acknowledged by every in-sync replica, as transactions require."""
    return _started(
        AIOKafkaProducer(
            **client_options(cluster),
            transactional_id=transactional_id,
            transaction_timeout_ms=transaction_timeout_ms,
        )
    )


def group_reader(
    cluster: KafkaCluster, *, group_id: str, gathered: bool = False, from_start: bool = True
) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    """A consumer in ``group_id`` that reads committed records only and commits nothing by
    itself (its owner commits what it has taken, or sends the offsets with a transaction);
    a group without offsets starts at the beginning, or with ``from_start`` False the end."""
    return _consumer(
        cluster,
        group_id=group_id,
        committed_only=True,
        gathered=gathered,
        auto_offset_reset="earliest" if from_start else "latest",
    )


def _consumer(
    cluster: KafkaCluster,
    *,
    group_id: str | None,
    committed_only: bool,
    gathered: bool,
    **options: Any,
) -> contextlib.AbstractAsyncContextManager[AIOKafkaConsumer]:
    return _started(
        AIOKafkaConsumer(
            **client_options(cluster),
            group_id=group_id,
            enable_auto_commit=False,  # offsets are committed on purpose, or not at all
            isolation_level="read_committed" if committed_only else "read_uncommitted",
            **(GATHERED if gathered else {}),
            **options,
        )
    )


@contextlib.asynccontextmanager
async def _started(client: _Client) -> AsyncIterator[_Client]:
    await client.start()
    try:
        yield client
    finally:
        await client.stop()
