"""Drift on live traffic: for each enum and boolean field of the answers on ``jobs.enriched``,
the share of each value (and of null) in the latest window against a reference window
before it, as a population stability index, PSI = Σ (current - reference)·ln(current /
reference) over the values, with the usual thresholds: below 0.1 stable, 0.1 to 0.25 watch,
0.25 and above act. A field that crosses 0.25 is logged once, with the values that moved and
whether the provider, model or prompt version changed between the windows. Shares per UTC day
and per (provider, model, prompt version) are kept for the view.

Every worker reads the topic from the start of the reference window (each answer's fields
only), so any worker's ``/drift`` answers for the whole group.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from streams.config.slices import DriftConfig
from streams.kafka.framing import decoded
from streams.kafka.readers import SinceTime
from streams.schemas import enrichment_schema, leaf_fields
from streams.shadow.compare import value_at

__all__ = ["DriftFollower", "DriftReport", "drift_fields", "psi", "status_of"]

log = logging.getLogger(__name__)

WATCH, ACT = 0.1, 0.25
# A share of 0 makes the index infinite: each window's shares are floored at this.
SHARE_FLOOR = 1e-4
# Fewer answers than this in a window say nothing about a distribution.
MIN_ANSWERS = 20
BUCKETS_PER_WINDOW = 24

Status = Literal["stable", "watch", "act", "too_few"]
Lineage = tuple[str, str, str]  # provider, model, prompt version


@functools.cache
def drift_fields() -> tuple[str, ...]:
    """The Enrichment's enum and boolean fields, by dotted path."""
    return tuple(
        path
        for path, node in leaf_fields(enrichment_schema())
        if "enum" in node or "boolean" in node.get("type", [])
    )


def psi(reference: Counter[str], current: Counter[str]) -> float:
    ref_total, cur_total = sum(reference.values()), sum(current.values())
    total = 0.0
    for value in set(reference) | set(current):
        r = max(reference[value] / ref_total, SHARE_FLOOR)
        c = max(current[value] / cur_total, SHARE_FLOOR)
        total += (c - r) * math.log(c / r)
    return round(total, 4)


def status_of(index: float | None) -> Status:
    if index is None:
        return "too_few"
    return "act" if index >= ACT else "watch" if index >= WATCH else "stable"


class _Answer(BaseModel):
    """The part of an enriched record drift reads."""

    model_config = ConfigDict(extra="ignore")
    provider: str
    model: str
    prompt_version: str | None = None
    enrichment: dict[str, Any]


class FieldDrift(BaseModel):
    field: str
    psi: float | None
    status: Status
    reference: dict[str, float]  # value ("null" for none) -> share
    current: dict[str, float]


class DayShares(BaseModel):
    day: str
    provider: str
    model: str
    prompt_version: str | None
    answers: int
    fields: dict[str, dict[str, float]]  # field -> value -> share


class DriftReport(BaseModel):
    window_days: float
    reference_days: float
    current_answers: int
    reference_answers: int
    fields: list[FieldDrift]
    days: list[DayShares]


class DriftFollower(SinceTime):
    def __init__(self, config: DriftConfig, *, clock: Callable[[], float] = time.time) -> None:
        # Every answer passes here: a fetch per few records cost more CPU than the counting
        # (1,783 fetches for 3,000 jobs), and shares over days need no answer within 0.5 s.
        super().__init__(cluster=config.cluster, topic=config.topic, gathered=True)
        self.config = config
        self._clock = clock
        self._bucket_s = config.window_days * 86400 / BUCKETS_PER_WINDOW
        self.restart()

    # --- as a follower of jobs.enriched ---------------------------------------------------

    def since_ms(self) -> int:
        span_days = self.config.window_days + self.config.reference_days
        return int((self._clock() - span_days * 86400) * 1000)

    def restart(self) -> None:
        # bucket -> field -> value -> answers; bucket -> lineages seen
        self._counts: dict[int, dict[str, Counter[str]]] = {}
        self._lineages: dict[int, set[Lineage]] = defaultdict(set)
        self._days: dict[tuple[str, Lineage], dict[str, Counter[str]]] = {}
        self._acting: set[str] = set()
        self._checked_at = 0.0

    def on_record(self, record: Any) -> None:
        try:
            answer = decoded(_Answer, record.value)
        except ValidationError:
            return  # not an enriched job: nothing to count
        bucket = int(record.timestamp / 1000 // self._bucket_s)
        lineage = (answer.provider, answer.model, answer.prompt_version or "")
        day = _day(record.timestamp)
        counts = self._counts.setdefault(bucket, {f: Counter() for f in drift_fields()})
        daily = self._days.setdefault((day, lineage), {f: Counter() for f in drift_fields()})
        self._lineages[bucket].add(lineage)
        for field in drift_fields():
            value = value_at(answer.enrichment, field)
            key = "null" if value is None else json.dumps(value).strip('"')
            counts[field][key] += 1
            daily[field][key] += 1

    def polled(self) -> None:
        now = self._clock()
        if now - self._checked_at >= min(60.0, self._bucket_s):
            self._checked_at = now
            self.check()

    # --- what it tells ----------------------------------------------------------------------

    def check(self) -> None:
        """Log each field that has crossed ``ACT`` since it was last below it."""
        current, reference = self._windows()
        report = self._report(current, reference)
        for found in report.fields:
            if found.status != "act":
                if found.status == "stable":
                    self._acting.discard(found.field)
                continue
            if found.field in self._acting:
                continue
            self._acting.add(found.field)
            log.warning(
                "drift: %s moved (PSI %.2f, act at %.2f) over the last %g days against the %g "
                "before: %s; %s",
                found.field,
                found.psi,
                ACT,
                report.window_days,
                report.reference_days,
                _moves(found),
                self._lineage_change(current, reference),
            )

    def report(self) -> DriftReport:
        return self._report(*self._windows())

    def _report(self, current: list[int], reference: list[int]) -> DriftReport:
        fields = []
        for field in drift_fields():
            ref = self._summed(reference, field)
            cur = self._summed(current, field)
            enough = min(sum(ref.values()), sum(cur.values())) >= MIN_ANSWERS
            index = psi(ref, cur) if enough else None
            fields.append(
                FieldDrift(
                    field=field,
                    psi=index,
                    status=status_of(index),
                    reference=_shares(ref),
                    current=_shares(cur),
                )
            )
        first = drift_fields()[0]
        return DriftReport(
            window_days=self.config.window_days,
            reference_days=self.config.reference_days,
            current_answers=sum(self._summed(current, first).values()),
            reference_answers=sum(self._summed(reference, first).values()),
            fields=fields,
            days=[
                DayShares(
                    day=day,
                    provider=provider,
                    model=model,
                    prompt_version=version or None,
                    answers=sum(counts[first].values()),
                    fields={field: _shares(values) for field, values in counts.items()},
                )
                for (day, (provider, model, version)), counts in sorted(self._days.items())
            ],
        )

    def _windows(self) -> tuple[list[int], list[int]]:
        """The buckets of the current window and of the reference window before it (the
        older ones forgotten)."""
        now_bucket = int(self._clock() // self._bucket_s)
        per_window = BUCKETS_PER_WINDOW
        reference_buckets = round(self.config.reference_days / self.config.window_days * per_window)
        oldest = now_bucket - per_window - reference_buckets + 1
        for bucket in [b for b in self._counts if b < oldest]:
            del self._counts[bucket]
            self._lineages.pop(bucket, None)
        first_day = _day(self.since_ms())
        for key in [k for k in self._days if k[0] < first_day]:
            del self._days[key]
        current = [b for b in self._counts if b > now_bucket - per_window]
        reference = [b for b in self._counts if b <= now_bucket - per_window]
        return current, reference

    def _lineages_in(self, buckets: list[int]) -> set[Lineage]:
        return {lineage for b in buckets for lineage in self._lineages[b]}

    def _lineage_change(self, current: list[int], reference: list[int]) -> str:
        now, before = self._lineages_in(current), self._lineages_in(reference)
        said = []
        for at, name in ((0, "provider"), (1, "model"), (2, "prompt version")):
            then, since = {lin[at] for lin in before}, {lin[at] for lin in now}
            if then != since:
                said.append(
                    f"{name} changed ({', '.join(sorted(then))} → {', '.join(sorted(since))})"
                )
        return "; ".join(said) if said else "provider, model and prompt version unchanged"

    def _summed(self, buckets: list[int], field: str) -> Counter[str]:
        total: Counter[str] = Counter()
        for bucket in buckets:
            total.update(self._counts[bucket][field])
        return total


def _day(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).date().isoformat()


def _shares(counts: Counter[str]) -> dict[str, float]:
    total = sum(counts.values())
    return {value: round(n / total, 4) for value, n in counts.most_common()} if total else {}


def _moves(found: FieldDrift) -> str:
    values = set(found.reference) | set(found.current)
    moved = sorted(
        values, key=lambda v: -abs(found.current.get(v, 0.0) - found.reference.get(v, 0.0))
    )[:3]
    return ", ".join(
        f"{v} {found.reference.get(v, 0.0):.2f} → {found.current.get(v, 0.0):.2f}" for v in moved
    )
