"""One evaluation: each contestant answers the set's items it has not answered before (for
its name, prompt version and the item's text), the answers and their calls are kept, and
each contestant's run is scored and recorded.

A contestant is a candidate model (``P/MODEL[@variant]``, by its vendor's Batch API where it
has one, at the batch rate) or production's chain as configured (live, through the router with
its fallback, retries and repair). Their calls go on ``llm.calls`` in lane ``shadow`` (never
served), so statistics, reports and budgets count them.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from streams.errors import EnrichmentFailed
from streams.evals.records import EvalAnswer, EvalRun, answer_key
from streams.evals.score import score
from streams.evals.sets import EvalItem, EvalSet
from streams.evals.store import EvalStore
from streams.models import ProviderCall, RawJob
from streams.pricing import ModelPrice
from streams.providers.prompt import input_tokens_estimate, prompt_version
from streams.routing.journal import NO_JOURNAL, Journal
from streams.routing.router import Router
from streams.shadow.answers import Answer, CandidateCalls, live_answers
from streams.shadow.record import total_usage

__all__ = ["Contestant", "Estimate", "candidate", "estimate", "evaluate", "production"]

# What an answer's output is guessed at before it is paid: the Enrichment's JSON for a
# posting is 150-300 tokens.
OUTPUT_TOKENS_GUESS = 300

Progress = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class Contestant:
    name: str
    prompt_version: str
    price: ModelPrice | None
    batch: bool  # answers through the vendor's Batch API, at its batch rate
    answer: Callable[[Sequence[RawJob], Progress], Awaitable[dict[str, Answer]]]


def candidate(
    calls: CandidateCalls,
    *,
    price: ModelPrice | None,
    live: bool,
    journal: Journal = NO_JOURNAL,
) -> Contestant:
    """``journal``: where its live calls are recorded before they leave."""
    return Contestant(
        name=calls.candidate.name,
        prompt_version=prompt_version(calls.candidate.instructions),
        price=price,
        batch=calls.by_batch(live=live),
        answer=lambda jobs, progress: calls.answer(
            jobs, label="eval", live=live, progress=progress, journal=journal
        ),
    )


def production(router: Router, *, price: ModelPrice | None) -> Contestant:
    """Production's chain as configured, live (its first provider's price for the estimate)."""
    chain = ", ".join(f"{name}/{router.adapter(name).model}" for name in router.chain)

    async def answer(jobs: Sequence[RawJob], progress: Progress) -> dict[str, Answer]:
        return await live_answers(router, jobs, request=router.request_for)

    return Contestant(
        name=f"production ({chain})",
        prompt_version=prompt_version(),
        price=price,
        batch=False,
        answer=answer,
    )


class Estimate(BaseModel):
    contestant: str
    items: int
    to_pay: int  # not answered before
    input_tokens: int
    output_tokens: int  # guessed
    cost_usd: float | None  # None: no price for the model
    batch: bool


def estimate(contestant: Contestant, items: Sequence[EvalItem], kept: set[str]) -> Estimate:
    todo = _todo(contestant, items, kept)
    input_tokens = sum(input_tokens_estimate(item.job) for item in todo)
    output_tokens = OUTPUT_TOKENS_GUESS * len(todo)
    cost = None
    if contestant.price is not None:
        price = contestant.price
        cost = price.cost_usd(
            input_tokens=input_tokens, cached_input_tokens=0, output_tokens=output_tokens
        )
        if contestant.batch and price.batch is not None:
            cost *= price.batch
    return Estimate(
        contestant=contestant.name,
        items=len(items),
        to_pay=len(todo),
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        cost_usd=None if cost is None else round(cost, 6),
        batch=contestant.batch,
    )


async def evaluate(
    eval_set: EvalSet,
    contestants: Sequence[Contestant],
    *,
    store: EvalStore,
    kept: dict[str, EvalAnswer],
    price_version: str,
    progress: Progress = lambda line: None,
    journal: Journal = NO_JOURNAL,
) -> list[EvalRun]:
    """Each contestant's run, recorded with its new answers and their calls (``kept``: the
    answers the store had, by key; the new ones are added; ``journal``: where the
    contestants recorded their calls, whose ledger events wait for the records)."""
    runs = []
    for contestant in contestants:
        todo = _todo(contestant, eval_set.items, set(kept))
        progress(f"{contestant.name}: {len(todo)} of {len(eval_set.items)} items to answer")
        given = await contestant.answer([item.job for item in todo], progress)
        fresh = [_answer(contestant, item, given[item.job.job_id]) for item in todo]
        calls = [
            store.calls.record(
                item.job.job_id,
                ProviderCall.of(
                    a,
                    job_id=item.job.job_id,
                    tenant=item.job.tenant,
                    price_version=price_version,
                    shadow=True,
                ),
            )
            for item in todo
            for a in given[item.job.job_id].attempts
        ]
        for answer in fresh:
            kept[answer.key] = answer
        answers = {
            item.digest: kept[answer_key(contestant.name, contestant.prompt_version, item.digest)]
            for item in eval_set.items
        }
        run = EvalRun(
            run_id=uuid.uuid4().hex[:12],
            set_name=eval_set.name,
            set_digest=eval_set.digest,
            paid=len(todo),
            score=score(contestant.name, contestant.prompt_version, eval_set.items, answers),
        )
        await journal.written(a.call_id for item in todo for a in given[item.job.job_id].attempts)
        await store.write(fresh, run, calls=calls)
        runs.append(run)
    return runs


def _todo(contestant: Contestant, items: Sequence[EvalItem], kept: set[str]) -> list[EvalItem]:
    return [
        item
        for item in items
        if answer_key(contestant.name, contestant.prompt_version, item.digest) not in kept
    ]


def _answer(contestant: Contestant, item: EvalItem, given: Answer) -> EvalAnswer:
    common = {
        "candidate": contestant.name,
        "prompt_version": contestant.prompt_version,
        "item": item.digest,
        "job_id": item.job.job_id,
        "usage": total_usage(given.attempts),
        "batch": any(a.batch_id is not None for a in given.attempts),
    }
    if isinstance(given, EnrichmentFailed):
        attempts = given.attempts
        invalid = bool(attempts) and attempts[-1].outcome == "invalid_output"
        return EvalAnswer(
            **common,
            outcome="invalid" if invalid else "failed",
            reason=str(given)[:500],
            latency_ms=sum(a.latency_ms for a in attempts),
        )
    return EvalAnswer(
        **common,
        outcome="answered",
        model=given.completion.model,
        enrichment=given.completion.enrichment.model_dump(mode="json"),
        latency_ms=given.latency_ms,
    )
