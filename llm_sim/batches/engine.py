"""What the three vendors' Batch APIs share: a batch of requests that ends some time after it
was created (``batch_delay_s``: time compressed from the vendors' hours), each request decided
as a live one would be (its provider's faults and dice), or the whole batch failed, expired or
cancelled (``batch_end``), or cancelled by its client. The vendor modules put this in their own
shapes."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from aiohttp import web

from llm_sim.faults import Faults

State = Literal["running", "completed", "failed", "expired", "cancelled"]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Decides(Protocol):
    faults: dict[str, Faults]

    def item_result(self, provider: str, body: Any, *, model: str | None) -> tuple[int, Any]: ...


@dataclass(frozen=True, kw_only=True)
class ItemResult:
    key: str  # the client's custom_id (OpenAI, Anthropic) or metadata key (Gemini)
    status: int | None  # None: never run (the batch failed, expired or was cancelled)
    body: Any = None


@dataclass(kw_only=True)
class SimBatch:
    id: str
    provider: str
    model: str
    requests: list[tuple[str, Any]]  # (key, request body)
    label: str | None  # OpenAI's metadata, Gemini's displayName: what a client can find it by
    created_at: float = field(default_factory=time.time)
    ends_at: float
    end: State
    state: State = "running"
    ended_at: float | None = None
    cancel_requested_at: float | None = None
    results: list[ItemResult] = field(default_factory=list)
    failure: str | None = None  # why a failed batch failed
    vendor: dict[str, Any] = field(default_factory=dict)  # what only its vendor's API shows


def guarded(dialect: Any, handler: Handler) -> Handler:
    """``handler`` behind the vendor's own key check."""

    async def checked(request: web.Request) -> web.StreamResponse:
        denied = dialect.auth_error(request)
        return denied if denied is not None else await handler(request)

    return checked


def page(batches: list[SimBatch], *, after: str | None, limit: int) -> tuple[list[SimBatch], bool]:
    """The batches after the one named ``after`` (newest first), at most ``limit``, and
    whether more follow: the cursor paging both OpenAI and Anthropic use."""
    if after is not None:
        ids = [b.id for b in batches]
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    return batches[:limit], len(batches) > limit


class BatchStore:
    def __init__(self, simulator: Decides) -> None:
        self.simulator = simulator
        self.batches: dict[str, SimBatch] = {}
        self.created: Counter[str] = Counter()  # batches per provider, for tests
        self.requests: Counter[str] = Counter()  # requests in them

    def create(
        self,
        provider: str,
        *,
        prefix: str,
        model: str,
        requests: list[tuple[str, Any]],
        label: str | None = None,
        failure: str | None = None,
        vendor: dict[str, Any] | None = None,
    ) -> SimBatch:
        """A new batch; ``failure``: it fails validation (OpenAI) with this reason."""
        faults = self.simulator.faults[provider]
        end: State = "failed" if failure else faults.batch_end
        batch = SimBatch(
            id=f"{prefix}{uuid.uuid4().hex[:24]}",
            provider=provider,
            model=model,
            requests=requests,
            label=label,
            ends_at=time.time() + (0.0 if failure else faults.batch_delay_s),
            end=end,
            failure=failure or ("Injected batch failure." if end == "failed" else None),
            vendor=vendor or {},
        )
        self.batches[batch.id] = batch
        self.created[provider] += 1
        self.requests[provider] += len(requests)
        return batch

    def refusal(self, provider: str, count: int) -> str | None:
        """Why a batch of ``count`` requests is refused at creation (a fault), or None."""
        most = self.simulator.faults[provider].batch_max_requests
        if most is not None and count > most:
            return f"Injected refusal: a batch of {count} requests is over {most}."
        return None

    def get(self, provider: str, batch_id: str) -> SimBatch | None:
        batch = self.batches.get(batch_id)
        if batch is None or batch.provider != provider:
            return None
        self._advance(batch)
        return batch

    def listed(self, provider: str) -> list[SimBatch]:
        """The provider's batches, newest first."""
        batches = [b for b in self.batches.values() if b.provider == provider]
        for batch in batches:
            self._advance(batch)
        return sorted(batches, key=lambda b: b.created_at, reverse=True)

    def cancel(self, batch: SimBatch) -> None:
        if batch.state == "running" and batch.cancel_requested_at is None:
            batch.cancel_requested_at = time.time()
            batch.end, batch.ends_at = "cancelled", min(batch.ends_at, time.time())

    def _advance(self, batch: SimBatch) -> None:
        if batch.state != "running" or time.time() < batch.ends_at:
            return
        batch.state, batch.ended_at = batch.end, time.time()
        if batch.end == "completed":
            for key, body in batch.requests:
                status, answer = self._decide(batch, body)
                batch.results.append(ItemResult(key=key, status=status, body=answer))
        else:
            batch.results = [ItemResult(key=key, status=None) for key, _ in batch.requests]

    def _decide(self, batch: SimBatch, body: Any) -> tuple[int, Any]:
        model = batch.model if batch.provider == "gemini" else None  # Gemini's is the batch's
        return self.simulator.item_result(batch.provider, body, model=model)
