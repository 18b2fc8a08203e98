"""Turns one job into provider attempts, always within the job's deadline.

Order: the job's preferred provider, then the chain (or, with the ``latency`` strategy, the
chain sorted by live latency), skipping disabled providers, open circuits, providers cooling
down after a rate limit and providers over their daily budget (see ``budget``). Per provider:
bounded retries with exponential backoff and full jitter that honour the delay the provider
asked for; then fallback. Rate limits (requests and tokens per minute) and a concurrency cap
hold however many jobs are in flight.

It knows nothing about Kafka. Time, sleep and randomness are injectable, so tests check exact
backoff sequences without waiting.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from streams.config.slices import LimitsConfig, RoutingConfig, TenantPolicy
from streams.deadline import Deadline
from streams.errors import (
    BadRequest,
    BudgetExhausted,
    DeadlineExceeded,
    EnrichmentFailed,
    InvalidOutput,
    ProviderError,
    ProviderTimeout,
    RateLimited,
    RequestTooLarge,
    failed_attempt,
)
from streams.models import DEFAULT_TENANT, Attempt, RawJob
from streams.providers.base import Completion, EnrichRequest, Provider
from streams.providers.prompt import Repair, input_tokens_estimate
from streams.routing.breaker import CircuitBreaker
from streams.routing.budget import Budget, budgets_today
from streams.routing.gate import Gate
from streams.routing.journal import NO_JOURNAL, Journal, Sending
from streams.routing.limits import WHOLE, ProviderLimiter, Share
from streams.routing.status import RoutingStatus
from streams.telemetry.spans import AttemptSpan, Telemetry
from streams.vocab import TOTAL_BUDGET

__all__ = ["Routed", "Router", "preferred_first", "request_for"]

log = logging.getLogger(__name__)

# How often a waiting job or a paused intake looks again (a provider may be re-enabled).
POLL_S = 1.0


def _abandoned_error(provider: str) -> ProviderTimeout:
    return ProviderTimeout("abandoned under way: the job was given back", provider=provider)


@dataclass(frozen=True, kw_only=True)
class Routed:
    completion: Completion
    provider: str
    attempts: list[Attempt]
    latency_ms: float


@dataclass(kw_only=True)
class _Job:
    """One job's progress through the providers."""

    request: EnrichRequest
    deadline: Deadline
    preferred: str | None
    attempts: list[Attempt] = field(default_factory=list)
    tries: Counter[str] = field(default_factory=Counter)
    failed_for_good: set[str] = field(default_factory=set)  # a final error: never again
    # Out of retries for now (an outage, or a wait beyond the deadline): the job falls back,
    # and comes back here at this time if nothing else worked by then.
    resting_until: dict[str, float] = field(default_factory=dict)

    def failure(
        self,
        reason: str,
        *,
        out_of_time: bool = False,
        error: type[DeadlineExceeded] = DeadlineExceeded,
    ) -> EnrichmentFailed:
        last = self.attempts[-1].error if self.attempts else None
        detail = f"{reason}; last: {last.type}: {last.message}" if last else reason
        if out_of_time:
            return self.deadline.exceeded(detail, attempts=self.attempts, error=error)
        return EnrichmentFailed(detail, attempts=self.attempts)


def request_for(
    job: RawJob,
    config: RoutingConfig,
    *,
    model: str | None = None,
    instructions: str | None = None,
) -> EnrichRequest:
    """The provider request for ``job``: its own options, else the configured defaults; the
    one way a request is made, live, for a shadow candidate (``model``, and ``instructions``
    for a prompt variant) and for a backfill, so a candidate is compared under the job's own
    sampling settings."""
    options = job.options
    return EnrichRequest(
        job=job,
        model=model or (options.model if options else None),
        max_tokens=(options.max_tokens if options and options.max_tokens else None)
        or config.max_output_tokens,
        temperature=(
            options.temperature
            if options and options.temperature is not None
            else config.temperature
        ),
        instructions=instructions,
    )


def preferred_first(chain: Sequence[str], preferred: str | None) -> list[str]:
    """The chain with the job's preferred provider first. The chain is also the allow-list:
    a job cannot route to a provider left out of it."""
    first = [preferred] if preferred is not None and preferred in chain else []
    return first + [name for name in chain if name != preferred]


class Router:
    def __init__(
        self,
        config: RoutingConfig,
        providers: Mapping[str, Provider],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        telemetry: Telemetry = Telemetry.OFF,
        lane: Literal["live", "shadow"] = "live",
        journal: Journal = NO_JOURNAL,
    ) -> None:
        self._clock = clock
        self.journal = journal  # where each call is recorded before it leaves
        self.telemetry = telemetry
        self.lane = lane  # what its attempt spans say: a shadow candidate's router is apart
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._gates: dict[str, Gate] = {}
        self._providers = providers
        self._paused = False
        self._share = WHOLE
        self._spent_today: Mapping[str, float] = {}
        self._tenant_spent: Mapping[str, float] = {}
        self.total_budget = Budget()
        self._on_the_wire: set[asyncio.Task[Any]] = set()  # jobs whose call is under way
        self._abandoned: list[tuple[RawJob, Attempt]] = []  # (job, call) cancelled mid-call
        self.reconfigure(config)

    # --- configuration, at start and at run time ---------------------------------------------

    def reconfigure(self, config: RoutingConfig) -> None:
        """Apply a routing config: at start, and for every validated config patch."""
        self._config = config
        self._chain = [name for name in config.chain if name in self._providers]
        for name, provider in self._providers.items():
            gate = self._gates.get(name)
            limits = config.limits_of(name)
            if gate is None:
                gate = self._gates[name] = Gate(
                    provider,
                    breaker=CircuitBreaker(provider=name, clock=self._clock, policy=config.breaker),
                    limiter=self._limiter(limits),
                    retry=config.retry,
                    clock=self._clock,
                    rng=self.rng,
                )
            else:  # in place: calls in flight keep holding their slots in it
                gate.limiter.reconfigure(limits)
            gate.breaker.policy = config.breaker
            gate.retry = config.retry
        self._apply_budgets()

    def _limiter(self, limits: LimitsConfig) -> ProviderLimiter:
        return ProviderLimiter(limits, share=self._share, clock=self._clock, sleep=self.sleep)

    def set_share(self, share: Share) -> None:
        """This worker's part of the group's limits (from the partitions it holds)."""
        if share == self._share:
            return
        self._share = share
        for gate in self._gates.values():
            gate.limiter.set_share(share)
        limited = {
            name: gate.limiter.effective()
            for name, gate in self._gates.items()
            if gate.limiter.config.rpm or gate.limiter.config.tpm
        }
        log.info("holding %d of %d partitions: limits here %s", share.held, share.of, limited)

    def set_tenant_spent_today(self, spent: Mapping[str, float]) -> None:
        """Today's spend per tenant for the whole group (USD), as the stats path sums it."""
        before = {name for name in self._tenant_spent if self.tenant_over_budget(name)}
        self._tenant_spent = spent
        after = {name for name in spent if self.tenant_over_budget(name)}
        for name in sorted(after - before):
            log.warning("tenant %s is over its daily budget: its jobs wait", name)
        for name in sorted(before - after):
            log.warning("tenant %s is within its budget again", name)

    def tenant(self, name: str) -> TenantPolicy:
        """What the tenant may spend and use, as configured now."""
        return self._config.tenant(name)

    @property
    def tenants_configured(self) -> tuple[str, ...]:
        """The tenants named in ``LLM_TENANTS``: with any, each tenant has a share of the
        calls; without, the jobs are one pool."""
        return tuple(self._config.tenants)

    def tenant_budget(self, tenant: str) -> Budget:
        return Budget(
            daily_usd=self.tenant(tenant).daily_budget_usd,
            spent_today_usd=self._tenant_spent.get(tenant, 0.0),
        )

    def tenant_over_budget(self, tenant: str) -> bool:
        return self.tenant_budget(tenant).exhausted

    def set_spent_today(self, spent: Mapping[str, float]) -> None:
        """Today's spend per provider for the whole group (USD), as the stats path sums it."""
        self._spent_today = spent
        self._apply_budgets()

    def _apply_budgets(self) -> None:
        budgets = budgets_today(self._config.budgets, self._spent_today, self._gates)
        self.total_budget = budgets.pop(TOTAL_BUDGET)
        for name, gate in self._gates.items():
            over = budgets[name].exhausted or self.total_budget.exhausted
            if over != gate.over_budget:
                verb = "over its daily budget: skipped" if over else "within budget again"
                log.warning("%s is %s (%s)", name, verb, budgets[name])
            gate.budget, gate.over_budget = budgets[name], over

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._gates[name].enabled = enabled

    # --- the questions the rest of the service asks ----------------------------------------

    def request_for(
        self, job: RawJob, *, model: str | None = None, instructions: str | None = None
    ) -> EnrichRequest:
        """``request_for`` at the routing settings in force now."""
        return request_for(job, self._config, model=model, instructions=instructions)

    def over_budget(self, name: str) -> bool:
        """Whether ``name`` is over its daily budget or the service's (for the whole group)."""
        return self._gates[name].over_budget

    def enabled(self, name: str) -> bool:
        return self._gates[name].enabled

    def deadline(self, seconds: float) -> Deadline:
        """``seconds`` from now, on the clock the router waits and limits by."""
        return Deadline.after(seconds, clock=self._clock)

    @property
    def chain(self) -> tuple[str, ...]:
        """The providers jobs go to, in the configured order."""
        return tuple(self._chain)

    @property
    def providers(self) -> frozenset[str]:
        """Every configured provider, in the chain or not."""
        return frozenset(self._gates)

    @property
    def default_deadline_s(self) -> float:
        """A job's time when it asks for none, as configured now."""
        return self._config.default_deadline_s

    def status(self) -> RoutingStatus:
        ready_at = self.next_ready_at()
        now = self._clock()  # read after: a provider ready "now" is not paused
        return RoutingStatus(
            chain=tuple(self._chain),
            strategy=self._config.strategy,
            intake_paused=ready_at > now,
            total_budget=self.total_budget,
            providers={
                name: gate.status(in_chain=name in self._chain, now=now)
                for name, gate in self._gates.items()
            },
        )

    def on_the_wire(self, task: asyncio.Task[Any]) -> bool:
        """Whether ``task`` (a job's) is waiting for a provider's answer now."""
        return task in self._on_the_wire

    def take_abandoned(self) -> list[tuple[RawJob, Attempt]]:
        """The calls cancelled while under way since the last look (a job given back at a
        rebalance), with their estimated cost: the vendor bills them all the same."""
        abandoned, self._abandoned = self._abandoned, []
        return abandoned

    def adapter(self, name: str) -> Provider:
        """The provider's adapter, for a call outside routing (a health check, a test)."""
        return self._gates[name].provider

    # --- routing --------------------------------------------------------------------------

    def order(self, preferred: str | None, *, tenant: str = DEFAULT_TENANT) -> list[str]:
        """The job's preferred provider first (if it is in the chain), then the chain, of
        the providers its tenant may use.

        The ``latency`` strategy sorts the chain by each provider's moving average latency
        (unmeasured providers first, so they get measured). Latency rather than cost, because
        cost per call is already known from the price table and can be expressed by the
        chain's order, while latency moves with the vendor's load, which only live figures
        show."""
        allowed = self._config.tenant(tenant).providers
        chain = [name for name in self._chain if allowed is None or name in allowed]
        if self._config.strategy == "latency":
            chain.sort(key=lambda name: self._gates[name].latency_ms or 0.0)
        return preferred_first(chain, preferred)

    def next_ready_at(self) -> float:
        """When some provider in the chain can next take a call (inf: all disabled)."""
        now = self._clock()
        return min((self._gates[name].ready_at(now) for name in self._chain), default=math.inf)

    async def wait_for_capacity(self) -> None:
        """Backpressure: return once some provider in the chain can take a call, instead of
        letting new jobs burn their retries into the dead-letter topic."""
        while (gap := self.next_ready_at() - self._clock()) > 0:
            if not self._paused:
                self._paused = True
                log.warning(
                    "every provider is disabled, open, rate-limited or over budget: pausing intake"
                )
            await self.sleep(min(gap, POLL_S))
        if self._paused:
            self._paused = False
            log.warning("a provider is available again: resuming intake")

    async def enrich(self, request: EnrichRequest, *, deadline: Deadline) -> Routed:
        """The first valid enrichment, or EnrichmentFailed (DeadlineExceeded when time ran
        out) carrying every attempt."""
        options = request.job.options
        state = _Job(
            request=request,
            deadline=deadline,
            preferred=options.preferred_provider if options else None,
        )
        started = self._clock()
        while True:
            name = await self._next_provider(state)
            if state.resting_until.pop(name, None) is not None:
                state.tries[name] = 0  # a new round
            state.tries[name] += 1
            result = await self._attempt(name, state)
            if isinstance(result, InvalidOutput) and (fix := self._repair(state, result)):
                state.tries[name] += 1
                result = await self._attempt(name, state, request=fix)
            if isinstance(result, Completion):
                latency_ms = (self._clock() - started) * 1000
                return Routed(
                    completion=result, provider=name, attempts=state.attempts, latency_ms=latency_ms
                )
            if isinstance(result, RateLimited):
                state.tries[name] -= 1  # waiting out a rate limit is bounded by the deadline
                continue
            if not result.retryable:
                state.failed_for_good.add(name)
                continue
            delay = max(
                result.retry_after_s or 0.0,
                self._config.retry.backoff_s(state.tries[name], self.rng),
            )
            if state.tries[name] >= self._config.retry.attempts or not deadline.allows(delay):
                state.resting_until[name] = self._clock() + delay  # fall back now
                continue
            await self._wait(f"backoff {name}", delay)

    async def _next_provider(self, state: _Job) -> str:
        """The provider to try next, waiting (within the deadline) while every usable one
        is resting, open or cooling down; EnrichmentFailed when none is left."""
        tenant = state.request.job.tenant
        while True:
            now = self._clock()
            order = self.order(state.preferred, tenant=tenant)
            if not order:
                raise state.failure(f"tenant {tenant!r} may use no provider in the chain")
            usable = [
                name
                for name in order
                if name not in state.failed_for_good and self._gates[name].enabled
            ]
            if not usable:
                raise state.failure("every provider failed")
            candidates = [name for name in usable if state.resting_until.get(name, 0.0) <= now]
            if not candidates:
                # Every provider is failing retryably: an outage. Wait for the first to be
                # worth another round rather than dead-letter a job that has time left.
                gap = min(state.resting_until[name] for name in usable) - now
                if not state.deadline.allows(gap):
                    raise state.failure("every provider failed", out_of_time=True)
                await self._wait("outage", gap)
                continue
            for name in candidates:
                if self._gates[name].admit():
                    return name
            wake = min(self._gates[name].ready_at(now) for name in candidates)
            if math.isinf(wake):  # all over budget, until one is raised or the day turns
                if not state.deadline.allows():
                    raise state.failure(
                        "every provider is over its daily budget",
                        out_of_time=True,
                        error=BudgetExhausted,
                    )
                await self._wait("budget", min(POLL_S, state.deadline.left()))
                continue
            # All open or cooling down: wait within the deadline.
            gap = max(wake - now, 0.01)
            if not state.deadline.allows(gap):
                blocked = ", ".join(f"{n} {self._gates[n].why_waiting()}" for n in candidates)
                raise state.failure(f"unavailable: {blocked}", out_of_time=True)
            await self._wait("providers unavailable", min(gap, POLL_S))

    async def _wait(self, what: str, delay: float) -> None:
        """A job's wait, and its span."""
        since = time.time_ns()
        await self.sleep(delay)
        self.telemetry.waited(what, started_ns=since)

    def _repair(self, state: _Job, error: InvalidOutput) -> EnrichRequest | None:
        """The one retry that may save an invalid answer on the same provider, cheaper than
        a fallback's whole call: a truncated one with twice the room (up to the cap), one that
        failed validation with the model told what was wrong (the conversation continued).
        None when repair is off or cannot help (a refusal, a blank answer, no more room)."""
        if not self._config.repair:
            return None
        request = state.request
        if error.truncated:
            room = min(request.max_tokens * 2, self._config.repair_max_tokens)
            return replace(request, max_tokens=room) if room > request.max_tokens else None
        if error.answer is None:
            return None
        return replace(request, repair=Repair(answer=error.answer, problems=error.message))

    async def _attempt(
        self, name: str, state: _Job, *, request: EnrichRequest | None = None
    ) -> Completion | ProviderError:
        """One call through the provider's gate (``request``: a repair of the job's), in its
        attempt span. DeadlineExceeded ends the job (with the call recorded if it was under
        way)."""
        gate = self._gates[name]
        repairing = request is not None
        request = request or state.request
        model = request.model or gate.provider.model
        with self.telemetry.attempt(
            job_id=request.job.job_id,
            request=state.request,
            lane=self.lane,
            model=model,
            base_url=gate.provider.config.base_url,
        ) as span:
            return await self._call(name, state, request, model, repairing=repairing, span=span)

    async def _call(
        self,
        name: str,
        state: _Job,
        request: EnrichRequest,
        model: str,
        *,
        repairing: bool,
        span: AttemptSpan,
    ) -> Completion | ProviderError:
        gate = self._gates[name]
        began: float | None = None
        recorded: str | None = None  # the id of the call's write-ahead record, once written
        waiting_since = time.time_ns()
        try:
            async with gate.call(
                tokens=_estimate_tokens(request), deadline=state.deadline
            ) as settle:
                self.telemetry.waited(f"slot {name}", started_ns=waiting_since)
                if not state.deadline.allows():
                    raise state.deadline.exceeded("no time left to start an attempt")
                began = self._clock()  # from here a call may be billed
                recorded = await self._journaled(name, state, request, model)
                attempt_deadline = state.deadline.capped(self._config.attempt_timeout_s)
                task = asyncio.current_task()
                assert task is not None
                self._on_the_wire.add(task)
                try:
                    with span.sending():
                        completion = await gate.provider.enrich(request, deadline=attempt_deadline)
                finally:
                    self._on_the_wire.discard(task)
                settle(completion.usage.input_tokens + completion.usage.output_tokens)
        except RequestTooLarge as exc:
            error: ProviderError = BadRequest(
                f"request exceeds the tokens-per-minute limit ({exc})", provider=name
            )
        except ProviderError as exc:
            error = exc
        except asyncio.CancelledError:
            if began is not None:  # sent: billed, though nobody will read the answer
                error = _abandoned_error(name)
                self._failed(state, name, model, error, began=began, span=span, call_id=recorded)
                self._abandoned.append((request.job, state.attempts[-1]))
            raise
        except DeadlineExceeded as exc:
            if began is None:
                raise state.failure(f"no time left to call {name}", out_of_time=True) from None
            # The call was under way, and may be billed: it is recorded.
            self._failed(state, name, model, exc, began=began, span=span, call_id=recorded)
            raise state.failure(f"{name} did not answer in time", out_of_time=True) from None
        else:
            latency_ms = self._ms(began)
            gate.observe(latency_ms)
            attempt = completion.attempt(
                provider=name,
                attempt=state.tries[name],
                latency_ms=latency_ms,
                call_id=recorded,
                repaired=repairing,
            )
            self._record(state, attempt, completion, span)
            return completion
        self._failed(state, name, model, error, began=began, span=span, call_id=recorded)
        return error

    async def _journaled(
        self, name: str, state: _Job, request: EnrichRequest, model: str
    ) -> str | None:
        """The call about to leave, recorded in the journal: the record's id, or None when
        the journal took no record."""
        call_id = uuid.uuid4().hex
        sending = Sending(
            call_id=call_id,
            job=request.job,
            provider=name,
            model=model,
            attempt=state.tries[name],
            lane=self.lane,
            estimate=self._gates[name].provider.cut_off_usage(request, model),
            lasts_s=state.deadline.left(),
        )
        return call_id if await self.journal.sent(sending) else None

    def _failed(
        self,
        state: _Job,
        name: str,
        model: str,
        error: ProviderError | DeadlineExceeded,
        *,
        began: float | None,
        span: AttemptSpan,
        call_id: str | None = None,
    ) -> None:
        """Record a failed attempt (``call_id``: the write-ahead record of one that was
        sent). One cut off by its cap or the job's deadline after it was sent is billed by
        the vendor all the same: it carries an estimate of that."""
        cut_off = began is not None and isinstance(error, ProviderTimeout | DeadlineExceeded)
        provider = self._gates[name].provider
        attempt = failed_attempt(
            error,
            provider=name,
            model=model,
            attempt=state.tries[name],
            latency_ms=self._ms(began),
            estimate=provider.cut_off_usage(state.request, model) if cut_off else None,
            call_id=call_id,
        )
        self._record(state, attempt, None, span)

    @staticmethod
    def _record(
        state: _Job, attempt: Attempt, completion: Completion | None, span: AttemptSpan
    ) -> None:
        """An attempt on the job's record; its span ends with it."""
        state.attempts.append(attempt)
        span.ended(attempt, completion)

    def _ms(self, since: float | None) -> float:
        return 0.0 if since is None else (self._clock() - since) * 1000


def _estimate_tokens(request: EnrichRequest) -> int:
    """Tokens a call may use, reserved against the tokens-per-minute limit up front (about
    four characters a token, plus the whole output allowance); the rest is given back."""
    return input_tokens_estimate(request.job) + request.max_tokens
