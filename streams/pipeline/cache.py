"""Reposts cost nothing twice: an identical job reuses the earlier enrichment.

The same posting comes back under new ids all the time (reposts, other boards). Its key is a
hash of what the prompt is made of (title, company, location, salary text and description,
each with case and whitespace normalised), the options that change the answer (model,
temperature, max tokens), the schema version and the prompt version: a changed prompt never
serves an answer made with the old one. Entries go to a compacted topic
(``llm.cache``, one partition, records older than ``LLM_CACHE_MAX_AGE_S`` deleted) that every
worker follows whole, so a repost hits whichever worker gets it; in memory at most
``LLM_CACHE_MAX_ENTRIES`` are kept, least recently used first out.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from pydantic import Field, ValidationError

from streams.config.slices import CacheConfig
from streams.enrichment import ENRICHMENT_VERSION, Enrichment
from streams.kafka.framing import decoded
from streams.kafka.readers import WholeTopic
from streams.message import Message
from streams.models import RawJob, Usage, utcnow
from streams.providers.prompt import prompt_version

__all__ = ["CachedEnrichment", "RepostCache", "repost_key"]

log = logging.getLogger(__name__)


class CachedEnrichment(Message):
    """One ``llm.cache`` record: the answer, who gave it, and what it cost."""

    enrichment: Enrichment
    provider: str
    model: str
    usage: Usage
    stored_at: datetime = Field(default_factory=utcnow)


def repost_key(job: RawJob) -> str:
    options = job.options
    parts = {
        "title": _normalised(job.title),
        "company": _normalised(job.company),
        "location": _normalised(job.location),
        "salary": _normalised(job.salary_text),
        "description": _normalised(job.description),
        "model": options.model if options else None,
        "temperature": options.temperature if options else None,
        "max_tokens": options.max_tokens if options else None,
        "schema_version": ENRICHMENT_VERSION,
        "prompt_version": prompt_version(),
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def _normalised(text: str | None) -> str:
    return " ".join((text or "").casefold().split())


class _Stored(NamedTuple):
    stored_at: float  # Unix seconds
    value: bytes  # the entry's JSON: read only when a repost asks for it


class RepostCache(WholeTopic):
    """The entries in memory as their JSON: a hundred thousand decoded ones held about
    4.5 KB each (the models, their lists and field sets), as JSON about 1 KB; and the
    follower, which reads every entry this worker writes too, decodes none of them."""

    def __init__(self, config: CacheConfig, *, clock: Callable[[], float] = time.time) -> None:
        super().__init__(
            cluster=config.cluster,
            topic=config.topic,
            retention_s=config.max_age_s,
            # This worker's own entries are in memory at once (put); another worker's may
            # come half a second late, which costs at most a call for a repost within it.
            gathered=True,
        )
        self.max_entries = config.max_entries
        self.max_age_s = config.max_age_s
        self.clock = clock
        self._entries: OrderedDict[str, _Stored] = OrderedDict()

    @property
    def entries(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> CachedEnrichment | None:
        stored = self._entries.get(key)
        if stored is None:
            return None
        if self.clock() - stored.stored_at > self.max_age_s:
            del self._entries[key]
            return None
        try:
            entry = decoded(CachedEnrichment, stored.value)
        except ValidationError as exc:  # e.g. from another schema version: a miss, not a crash
            log.warning("cache: ignoring an invalid entry: %s", exc.errors()[0]["msg"])
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, entry: bytes, *, stored_at: float) -> None:
        """``entry``: a CachedEnrichment as its topic's record value; ``stored_at``: Unix
        seconds."""
        self._keep(key, _Stored(stored_at, entry))

    def apply(self, record: Any) -> None:
        key = (record.key or b"").decode()
        if not record.value:  # a tombstone: the entry is gone
            self._entries.pop(key, None)
            return
        # when it was written stands for when it was stored (the same moment, give or take
        # the producer's batching), so that an entry is not decoded to learn its age
        self._keep(key, _Stored(record.timestamp / 1000, record.value))

    def _keep(self, key: str, stored: _Stored) -> None:
        self._entries[key] = stored
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
