"""The ``llm.shadow`` record of one job and one candidate, from what each side gave."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from streams.config.slices import ShadowCandidate
from streams.errors import EnrichmentFailed
from streams.models import (
    Attempt,
    EnrichedJobRecord,
    ProviderCall,
    ShadowAnswer,
    ShadowResult,
    Usage,
)
from streams.providers.prompt import prompt_version
from streams.routing.router import Routed
from streams.shadow.compare import agreement, scores

__all__ = ["compared", "dropped", "ledger", "production_side", "total_usage"]

Origin = Literal["live", "backfill"]


def total_usage(attempts: Sequence[Attempt]) -> Usage:
    """What the attempts cost together (a cut-off call at its estimate)."""
    usages = [a.estimate or a.usage for a in attempts]
    return Usage(
        **{
            name: round(sum(getattr(u, name) for u in usages), 10)
            if isinstance(field.default, float)
            else sum(getattr(u, name) for u in usages)
            for name, field in Usage.model_fields.items()
        }
    )


def ledger(result: ShadowResult, *, price_version: str) -> list[ProviderCall]:
    """The candidate's calls for ``result``, as ``llm.calls`` records (lane ``shadow``)."""
    attempts = result.shadow.attempts if result.shadow is not None else []
    return [
        ProviderCall.of(
            a,
            job_id=result.job_id,
            tenant=result.tenant,
            price_version=price_version,
            shadow=True,
        )
        for a in attempts
    ]


def production_side(enriched: EnrichedJobRecord) -> ShadowAnswer:
    return ShadowAnswer(
        provider=enriched.provider,
        model=enriched.model,
        enrichment=enriched.enrichment,
        usage=total_usage(enriched.attempts) if enriched.attempts else enriched.usage,
        latency_ms=enriched.latency_ms,
        attempts=enriched.attempts,
    )


def compared(
    candidate: ShadowCandidate,
    production: EnrichedJobRecord,
    answer: Routed | EnrichmentFailed,
    *,
    origin: Origin,
) -> ShadowResult:
    """The candidate's answer (or its failure) beside production's, scored."""
    ours = production_side(production)
    if isinstance(answer, Routed):
        theirs = ShadowAnswer(
            provider=candidate.provider,
            model=answer.completion.model,
            enrichment=answer.completion.enrichment,
            usage=total_usage(answer.attempts),
            latency_ms=answer.latency_ms,
            attempts=answer.attempts,
        )
        assert ours.enrichment is not None
        field_scores = scores(ours.enrichment, answer.completion.enrichment)
        return _result(
            candidate,
            production,
            origin=origin,
            outcome="compared",
            shadow=theirs,
            scores=field_scores,
            agreement=agreement(field_scores),
        )
    attempts = answer.attempts
    if not attempts:  # no call was made: its limits or its budget left no time
        return dropped(candidate, production, origin=origin, reason=str(answer))
    theirs = ShadowAnswer(
        provider=candidate.provider,
        model=candidate.model,
        enrichment=None,
        usage=total_usage(attempts),
        latency_ms=sum(a.latency_ms for a in attempts),
        attempts=list(attempts),
    )
    invalid = attempts[-1].outcome == "invalid_output"
    return _result(
        candidate,
        production,
        origin=origin,
        outcome="invalid" if invalid else "failed",
        reason=str(answer)[:500],
        shadow=theirs,
    )


def dropped(
    candidate: ShadowCandidate, production: EnrichedJobRecord, *, origin: Origin, reason: str
) -> ShadowResult:
    """A sampled job the candidate was not sent (its queue full, its budget spent)."""
    return _result(candidate, production, origin=origin, outcome="dropped", reason=reason)


def _result(
    candidate: ShadowCandidate,
    production: EnrichedJobRecord,
    *,
    origin: Origin,
    outcome: Literal["compared", "invalid", "failed", "dropped"],
    reason: str | None = None,
    shadow: ShadowAnswer | None = None,
    scores: dict[str, float] | None = None,
    agreement: float | None = None,
) -> ShadowResult:
    return ShadowResult(
        job_id=production.job_id,
        tenant=production.job.tenant,
        candidate=candidate.name,
        origin=origin,
        outcome=outcome,
        reason=reason,
        sample=candidate.sample,
        prompt_version=prompt_version(candidate.instructions),
        production=production_side(production),
        shadow=shadow,
        scores=scores or {},
        agreement=agreement,
    )
