"""The enrich agent: ``jobs.raw`` in, ``jobs.enriched`` or ``jobs.dead-letter`` out.

Faust 0.15.3 loses messages two ways (shared reference faust.md §0), and this module is built
around both:

1. An exception escaping an agent acks and skips its message. So ``handle`` turns every
   per-record failure into a dead-letter record; nothing but cancellation leaves it.
2. An agent with ``concurrency > 1`` commits past records still in flight, because Faust
   commits the first run of consecutive acked offsets, wherever it starts. So the agent runs
   one actor on a manual-ack stream, keeps up to ``llm_worker_concurrency`` records in flight,
   and acks them strictly in arrival order once each one's output is acknowledged by the
   broker. A slow record holds back the commit, never the other records' work.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from pydantic import ValidationError

from streams.cache import CachedEnrichment, RepostCache, repost_key
from streams.errors import EnrichmentFailed
from streams.models import (
    MAX_JOB_ID_CHARS,
    Attempt,
    DeadLetter,
    EnrichedJob,
    ErrorInfo,
    Message,
    OriginalRecord,
    ProviderCall,
    RawJob,
    Stage,
    Usage,
)
from streams.router import Router
from streams.topics import Topics

log = logging.getLogger(__name__)

# How much of an undeliverable record a dead letter copies (the rest stays addressable by
# topic/partition/offset); keeps the dead letter under Kafka's default 1 MB limit.
MAX_COPIED_VALUE_BYTES = 256 * 1024
PUBLISH_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class PublishRejected(Exception):
    """The broker refused a record for good (e.g. too large); retrying cannot help."""


class Enricher:
    """Handles one raw record at a time; never raises for a bad record."""

    def __init__(
        self,
        *,
        topics: Topics,
        router: Router,
        price_version: str,
        cache: RepostCache | None = None,
    ) -> None:
        self.topics = topics
        self.router = router
        self.price_version = price_version
        self.cache = cache

    async def handle(self, event: Any) -> None:
        message = event.message
        stage: Stage = "decode"
        job: RawJob | None = None
        data: Any = None
        try:
            data = json.loads(bytes(message.value or b"").decode("utf-8"))
            stage = "validate"
            job = RawJob.model_validate(data)
            stage = "enrich"
            repost = repost_key(job) if self.cache is not None else None
            cached = self.cache.get(repost) if self.cache is not None and repost else None
            if cached is None:
                routed = await self.router.enrich(job)
        except EnrichmentFailed as exc:
            await asyncio.gather(
                self._dead_letter(
                    event, "enrich", exc, job_id=_job_id_of(data), attempts=exc.attempts
                ),
                self.record_calls(job, exc.attempts),
            )
            return
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValidationError) as exc:
            await self._dead_letter(event, stage, exc, job_id=_job_id_of(data))
            return
        except Exception as exc:  # a bug must cost one dead letter, not the record
            log.exception("unexpected error enriching record at offset %s", message.offset)
            await self._dead_letter(event, stage, exc, job_id=_job_id_of(data))
            return

        if cached is not None:
            enriched, calls = self._from_cache(job, cached)
            extra = []
        else:
            enriched = EnrichedJob(
                job_id=job.job_id,
                job=job,
                enrichment=routed.completion.enrichment,
                provider=routed.provider,
                model=routed.completion.model,
                attempts=routed.attempts,
                usage=routed.completion.usage,
                latency_ms=routed.latency_ms,
            )
            calls = self._calls(job, routed.attempts)
            extra = [self._remember(repost, enriched)] if repost else []
        # The audit events, the result (and a new cache entry) go out together: one broker
        # round trip, not several.
        results = await asyncio.gather(
            self._publish(self.topics.enriched, job.job_id, enriched),
            *(self._publish(self.topics.calls, call.provider, call) for call in calls),
            *extra,
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, PublishRejected):
                await self._dead_letter(
                    event, "publish", result, job_id=job.job_id, attempts=enriched.attempts
                )
            elif isinstance(result, BaseException):
                raise result

    def _from_cache(
        self, job: RawJob, cached: CachedEnrichment
    ) -> tuple[EnrichedJob, list[ProviderCall]]:
        enriched = EnrichedJob(
            job_id=job.job_id,
            job=job,
            enrichment=cached.enrichment,
            provider=cached.provider,
            model=cached.model,
            attempts=[],
            usage=Usage(),
            latency_ms=0.0,
            cached=True,
        )
        hit = ProviderCall(
            provider=cached.provider,
            model=cached.model,
            job_id=job.job_id,
            attempt=1,
            outcome="cache_hit",
            latency_ms=0.0,
            usage=cached.usage,
            price_version=self.price_version,
        )
        return enriched, [hit]

    async def _remember(self, key: str, enriched: EnrichedJob) -> None:
        assert self.cache is not None
        entry = CachedEnrichment(
            enrichment=enriched.enrichment,
            provider=enriched.provider,
            model=enriched.model,
            usage=enriched.usage,
        )
        self.cache.put(key, entry)  # at once: a repost right behind must not wait for the topic
        await self._publish(self.topics.cache, key, entry)

    def _calls(self, job: RawJob, attempts: list[Attempt]) -> list[ProviderCall]:
        return [
            ProviderCall.of(attempt, job_id=job.job_id, price_version=self.price_version)
            for attempt in attempts
        ]

    async def record_calls(self, job: RawJob | None, attempts: list[Attempt]) -> None:
        if job is None:
            return
        await asyncio.gather(
            *(
                self._publish(self.topics.calls, call.provider, call)
                for call in self._calls(job, attempts)
            )
        )

    async def _dead_letter(
        self,
        event: Any,
        stage: Stage,
        exc: BaseException,
        *,
        job_id: str | None,
        attempts: list[Attempt] | None = None,
    ) -> None:
        message = event.message
        key = _text_or_base64(message.key)
        value = _text_or_base64(message.value, limit=MAX_COPIED_VALUE_BYTES)
        record = DeadLetter(
            job_id=job_id,
            stage=stage,
            error=ErrorInfo(type=type(exc).__name__, message=_describe(exc)),
            attempts=attempts or [],
            original=OriginalRecord(
                topic=message.topic,
                partition=message.partition,
                offset=message.offset,
                timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
                key=key[0],
                key_encoding=key[1],
                value=value[0],
                value_encoding=value[1],
                value_truncated=value[2],
            ),
        )
        dead_key = job_id or (key[0] if key[1] == "utf-8" else None)
        await self._publish(self.topics.dead_letter, dead_key, record)

    async def _publish(self, topic: Any, key: str | None, record: Message) -> None:
        """Send and wait for the broker's acknowledgement, retrying while the broker is
        away: the input is acked only after this returns, so giving up would lose it.

        ``force=True`` skips Faust's attachments, which would hold the record until the
        input is acked, while we hold the ack until the record is delivered."""
        value = record.model_dump_json().encode("utf-8")
        for attempt in itertools.count():
            try:
                delivery = await topic.send(
                    key=key.encode() if key else None, value=value, force=True
                )
                await delivery
                return
            except MessageSizeTooLargeError as exc:
                raise PublishRejected(f"{topic.get_topic_name()}: {exc}") from None
            except (KafkaError, TimeoutError) as exc:
                delay = PUBLISH_BACKOFF_S[min(attempt, len(PUBLISH_BACKOFF_S) - 1)]
                log.warning("publish to %s failed (%s); retrying in %.1fs", topic, exc, delay)
                await asyncio.sleep(delay)


class InOrderAcks:
    """Up to ``limit`` records in flight; acks in arrival order as each one finishes."""

    def __init__(
        self,
        *,
        limit: int,
        ack: Callable[[Any], Awaitable[Any]],
        on_failure: Callable[[BaseException], Awaitable[None]],
    ) -> None:
        self._slots = asyncio.Semaphore(limit)
        self._queue: asyncio.Queue[tuple[Any, asyncio.Task[None]]] = asyncio.Queue()
        self._ack = ack
        self._on_failure = on_failure
        self._acker: asyncio.Task[None] | None = None

    async def submit(self, event: Any, work: Awaitable[None]) -> None:
        await self._slots.acquire()
        if self._acker is None:
            self._acker = asyncio.create_task(self._ack_in_order())
        task = asyncio.ensure_future(work)
        task.add_done_callback(lambda _: self._slots.release())
        self._queue.put_nowait((event, task))

    async def _ack_in_order(self) -> None:
        while True:
            event, task = await self._queue.get()
            await asyncio.wait([task])
            if task.cancelled():
                return  # shutting down: this record and those after it stay uncommitted
            failure = task.exception()
            if failure is not None:
                # Only a bug gets here. Acking later records would commit past this one,
                # so stop acking and stop the worker; a restart redoes the record.
                log.critical("record handler failed; stopping", exc_info=failure)
                await self._on_failure(failure)
                return
            await self._ack(event)

    async def close(self) -> None:
        if self._acker is not None:
            self._acker.cancel()


def _job_id_of(data: Any) -> str | None:
    """The record's job id, if it has a usable one: a job that fails validation for another
    field still names itself in its dead letter (and ``replay --job-id`` finds it)."""
    job_id = data.get("job_id") if isinstance(data, dict) else None
    if isinstance(job_id, str) and 0 < len(job_id) <= MAX_JOB_ID_CHARS:
        return job_id
    return None


def _text_or_base64(raw: bytes | None, *, limit: int | None = None) -> tuple[str | None, Any, bool]:
    if raw is None:
        return None, "utf-8", False
    truncated = limit is not None and len(raw) > limit
    if truncated:
        raw = raw[:limit]
    try:
        return raw.decode("utf-8"), "utf-8", truncated
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64", truncated


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors()[:10]:
            where = ".".join(str(p) for p in error["loc"]) or "value"
            parts.append(f"{where}: {error['msg']}")
        more = exc.error_count() - len(parts)
        return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8: {exc.reason} at byte {exc.start}"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    return str(exc)[:2000] or type(exc).__name__
