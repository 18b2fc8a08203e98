"""What the vendors' Batch APIs share: submit requests built exactly as live ones, poll the
batch, and read each result exactly as a live answer (the same structured output, validation
and prices, at the batch rate). A batch adapter wraps its vendor's live adapter: its client,
keys, request builder and answer reader.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from streams.deadline import Deadline
from streams.errors import ProviderError, ProviderUnavailable
from streams.providers.base import Completion, EnrichRequest, Provider

__all__ = ["BatchAPI", "BatchStatus", "ItemOutcome"]

REQUEST_TIMEOUT_S = 60.0  # one call to a Batch API (an upload of many MB included)

BatchState = Literal["running", "completed", "failed", "expired", "cancelled"]


@dataclass(frozen=True, kw_only=True)
class ItemOutcome:
    """One request's result: its completion, or why it has none."""

    completion: Completion | None = None
    error: ProviderError | None = None


@dataclass(frozen=True, kw_only=True)
class BatchStatus:
    state: BatchState
    detail: str = ""  # the vendor's words for a failed, expired or cancelled batch
    items: dict[str, ItemOutcome] = field(default_factory=dict)  # by custom id, once ended


class BatchAPI(ABC):
    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.name = provider.name

    @abstractmethod
    async def submit(
        self, *, label: str, model: str, requests: list[tuple[str, EnrichRequest]]
    ) -> str:
        """Create a batch of ``requests`` (custom id, request); its id at the vendor.
        ``label`` names it there, for ``find``."""

    @abstractmethod
    async def poll(self, batch_id: str, *, model: str) -> BatchStatus:
        """The batch's state, and its items' outcomes once it has ended."""

    @abstractmethod
    async def find(self, *, label: str, created_after: float, count: int) -> str | None:
        """The id of a batch this service submitted as ``label`` at or after
        ``created_after`` (Unix seconds) with ``count`` requests, if the vendor has one: what a
        worker killed mid-submission leaves."""

    # --- for the vendor modules ------------------------------------------------------------

    def body(self, request: EnrichRequest, model: str) -> dict[str, Any]:
        _, body = self.provider.build(request, model)
        return body

    async def call(self, method: str, path: str, **content: Any) -> httpx.Response:
        """One call to the Batch API; any status but 200 is the vendor's error."""
        provider = self.provider
        response = await provider._send(
            method, path, deadline=Deadline.after(REQUEST_TIMEOUT_S), **content
        )
        if response.status_code != 200:
            raise provider.error_for(response)
        return response

    async def json(self, method: str, path: str, **content: Any) -> Any:
        return self.provider._json_body(await self.call(method, path, **content))

    def item(self, status: int, body: Any, *, model: str) -> ItemOutcome:
        """One request's answer (HTTP status and body) read as a live call's would be."""
        if status != 200:
            error = self.provider.error_for(httpx.Response(status, json=body))
            return ItemOutcome(error=error)
        try:
            return ItemOutcome(
                completion=self.provider.complete(body, model=model, status=200, batch=True)
            )
        except ProviderError as exc:
            return ItemOutcome(error=exc)

    def not_run(self, message: str) -> ItemOutcome:
        """A request the vendor never ran (the batch expired or was cancelled first)."""
        return ItemOutcome(error=ProviderUnavailable(message, provider=self.name))
