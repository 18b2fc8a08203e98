"""Metadata refreshes that back off while the broker is out of reach.

Every aiokafka client refreshes its metadata in one background task, whenever its fetcher or
sender asks; with the broker gone each refresh fails at once (connection refused) and they ask
again at once, without a pause: some 16,000 refreshes a second per worker (410,133 failed
attempts in a 25 s outage), a core burnt on reconnecting. Java's clients wait
``retry.backoff.ms`` between failed refreshes, growing to ``retry.backoff.max.ms`` (KIP-580);
this gives aiokafka's background refresh the same, in the one method every such refresh passes
through. The first refresh after a success is never delayed, and one-off requests for fresh
metadata (``fetch_all_metadata``, how the worker tells the broker is back) are not delayed.

aiokafka is pinned in pyproject.toml: the wrapped method is private.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.client import AIOKafkaClient

__all__ = ["install"]

FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0  # how long a worker may take to notice the broker is back

_unpatched = AIOKafkaClient._metadata_update
_DELAY = "_streams_refresh_backoff_s"


async def _metadata_update_with_backoff(self: Any, cluster_metadata: Any, topics: Any) -> bool:
    if cluster_metadata is not self.cluster:  # a one-off request, not the background refresh
        return bool(await _unpatched(self, cluster_metadata, topics))
    delay: float = getattr(self, _DELAY, 0.0)
    if delay:
        await asyncio.sleep(delay)
    updated = bool(await _unpatched(self, cluster_metadata, topics))
    setattr(self, _DELAY, 0.0 if updated else min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, 2 * delay)))
    return updated


def install() -> None:
    """Back off the background refresh of every aiokafka client in this process."""
    AIOKafkaClient._metadata_update = _metadata_update_with_backoff
