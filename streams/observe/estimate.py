"""What a replay would cost, before it runs: per provider, the jobs that would go to it and
their cost at what a job has cost there so far.

The figures come from ``llm.stats`` (committed batches, since the start): a provider's cost
over the jobs it enriched, so its failed attempts are paid for too, scaled down by the share
of jobs the repost cache has served.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from streams.config.settings import Settings
from streams.kafka.admin import read_to_end
from streams.kafka.framing import decoded
from streams.models import DeadLetter, RawJob
from streams.observe import stats as st
from streams.observe.aggregate import StatsBatch
from streams.routing.router import preferred_first

__all__ = ["NO_CALL", "estimates", "first_providers", "totals_so_far"]

NO_CALL = "-"  # a record that is not a valid job: dead-lettered again without a call


@dataclass(frozen=True, kw_only=True)
class Estimate:
    provider: str
    jobs: int
    usd_per_job: float | None  # None: no job enriched there yet
    cache_hit_rate: float

    @property
    def usd(self) -> float | None:
        if self.usd_per_job is None:
            return None
        return self.jobs * self.usd_per_job * (1 - self.cache_hit_rate)


def first_providers(letters: Iterable[DeadLetter], chain: Sequence[str]) -> Counter[str]:
    """How many of the letters' jobs would go to each provider first."""
    counts: Counter[str] = Counter()
    for letter in letters:
        try:
            job = decoded(RawJob, letter.original.value_bytes())
        except ValidationError:
            counts[NO_CALL] += 1
            continue
        preferred = job.options.preferred_provider if job.options else None
        order = preferred_first(chain, preferred)
        counts[order[0] if order else NO_CALL] += 1
    return counts


def estimates(jobs: Counter[str], totals: dict[str, st.Stats]) -> list[Estimate]:
    enriched = {
        p: s["outcomes"].get("success", 0) + s["outcomes"].get("repaired", 0)
        for p, s in totals.items()
    }
    hits = sum(s.get("cache_hits", 0) for s in totals.values())
    hit_rate = hits / (hits + sum(enriched.values())) if hits else 0.0
    out = []
    for provider, count in sorted(jobs.items()):
        stats, done = totals.get(provider), enriched.get(provider, 0)
        per_job = stats["cost_usd"] / done if stats and done else None
        if provider == NO_CALL:
            per_job = 0.0
        out.append(
            Estimate(provider=provider, jobs=count, usd_per_job=per_job, cache_hit_rate=hit_rate)
        )
    return out


async def totals_so_far(settings: Settings) -> dict[str, st.Stats]:
    """Every provider's figures since the start, summed from ``llm.stats``."""
    totals: dict[str, st.Stats] = {}
    records = await read_to_end(settings.cluster(), settings.llm_topic_stats, committed_only=True)
    for record in records:
        try:
            batch = StatsBatch.model_validate_json(record.value or b"")
        except ValidationError:
            continue
        for partial in batch.partials:
            totals[partial.provider] = st.merge(
                totals.get(partial.provider) or st.empty(), partial.stats
            )
    return totals
