"""Replaying dead letters: their original records go back to the raw topic, once.

Which dead letters were replayed is kept in a compacted topic (``llm.replays``, keyed by the
dead letter's own topic, partition and offset), so a second run, on any machine, skips them unless
forced. The marker is written only after the raw record is acknowledged: a crash in between
means a later run replays that letter again (at least once, never lost).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import ValidationError

from streams.config.settings import Settings
from streams.kafka.admin import ensure_topic, read_to_end
from streams.kafka.clients import producer
from streams.kafka.framing import decoded
from streams.models import DeadLetter, utcnow
from streams.vocab import Stage

__all__ = ["Selection", "replay"]

log = logging.getLogger(__name__)

Verdict = Literal["replayed", "would replay", "already replayed", "truncated"]


@dataclass(frozen=True, kw_only=True)
class Selection:
    """Which dead letters to replay; every given criterion must hold."""

    since: datetime | None = None
    stage: Stage | None = None
    error_type: str | None = None
    job_ids: frozenset[str] = field(default_factory=frozenset)

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.since is None or letter.failed_at >= self.since)
            and (self.stage is None or letter.stage == self.stage)
            and (self.error_type is None or self.error_type in _error_types(letter))
            and (not self.job_ids or letter.job_id in self.job_ids)
        )


def _error_types(letter: DeadLetter) -> set[str]:
    """The dead letter's own error (EnrichmentFailed, ValidationError, ...) and those of its
    attempts (ProviderUnavailable, AuthenticationError, ...): people select by the cause."""
    return {letter.error.type} | {a.error.type for a in letter.attempts if a.error is not None}


@dataclass(frozen=True, kw_only=True)
class ReplayResult:
    letter: DeadLetter
    where: str  # the dead letter's own topic:partition:offset
    verdict: Verdict


async def replay(
    settings: Settings, *, selection: Selection, dry_run: bool = False, force: bool = False
) -> list[ReplayResult]:
    """Republish the selected dead letters' original records to the raw topic, keyed as
    they were. Returns what happened to each selected letter, in dead-letter order."""
    cluster = settings.cluster()
    done = {
        record.key.decode()
        for record in await read_to_end(cluster, settings.llm_topic_replays)
        if record.key is not None and record.value is not None
    }
    outcomes = [
        ReplayResult(
            letter=letter, where=where, verdict=_verdict(letter, where, done, dry_run, force)
        )
        for letter, where in _letters(await read_to_end(cluster, settings.llm_topic_dead_letter))
        if selection.matches(letter)
    ]
    chosen = [outcome for outcome in outcomes if outcome.verdict == "replayed"]
    if chosen:
        await _republish(settings, chosen)
    return outcomes


def _letters(records: Iterable[Any]) -> Iterable[tuple[DeadLetter, str]]:
    for record in records:
        where = f"{record.topic}:{record.partition}:{record.offset}"
        try:
            yield decoded(DeadLetter, record.value), where
        except ValidationError as exc:
            log.warning("dead letter %s is not a DeadLetter, skipped: %s", where, exc)


def _verdict(letter: DeadLetter, where: str, done: set[str], dry_run: bool, force: bool) -> Verdict:
    if letter.original.value_truncated or letter.original.value is None:
        return "truncated"
    if where in done and not force:
        return "already replayed"
    return "would replay" if dry_run else "replayed"


async def _republish(settings: Settings, chosen: list[ReplayResult]) -> None:
    cluster = settings.cluster()
    await ensure_topic(cluster, settings.llm_topic_raw, partitions=settings.llm_topic_partitions)
    await ensure_topic(cluster, settings.llm_topic_replays, partitions=1, compacted=True)
    async with producer(cluster) as client:
        for outcome in chosen:
            original = outcome.letter.original
            await client.send_and_wait(
                settings.llm_topic_raw, original.value_bytes(), key=original.key_bytes()
            )
            marker = {"replayed_at": utcnow().isoformat(), "job_id": outcome.letter.job_id}
            await client.send_and_wait(
                settings.llm_topic_replays, json.dumps(marker).encode(), key=outcome.where.encode()
            )
