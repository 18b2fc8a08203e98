"""What every provider adapter shares: the request it gets, the completion it returns,
one pooled HTTP client, transport-error mapping, Retry-After parsing and pricing."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import ValidationError

from streams.errors import (
    InvalidOutput,
    ProviderConnectError,
    ProviderTimeout,
    ProviderUnavailable,
    redact,
)
from streams.models import Enrichment, RawJob, Usage
from streams.settings import ModelPrice, ProviderConfig

# The longest server-asked delay worth honouring; beyond it, fall back instead of waiting
# (both official SDKs cap it: OpenAI at 120 s, Anthropic at 60 s).
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True, kw_only=True)
class EnrichRequest:
    job: RawJob
    model: str | None = None  # None: the provider's configured model
    max_tokens: int = 1024
    temperature: float | None = 0.2


@dataclass(frozen=True, kw_only=True)
class Completion:
    enrichment: Enrichment
    model: str
    finish_reason: str
    usage: Usage
    http_status: int


@dataclass(frozen=True, kw_only=True)
class Health:
    ok: bool
    detail: str


class Provider(ABC):
    """One vendor's HTTP API. Subclasses build the body and read the answer; this class
    owns the client, the timeout and the mapping of transport failures."""

    name: str

    def __init__(self, config: ProviderConfig, *, prices: Mapping[str, ModelPrice]) -> None:
        self.config = config
        self._prices = prices
        self._secrets = [config.api_key.get_secret_value()] if config.api_key else []
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=self.auth_headers(),
            limits=httpx.Limits(
                max_connections=config.max_connections,
                max_keepalive_connections=config.max_connections,
            ),
            # The total budget per attempt is enforced around each call (asyncio.timeout);
            # these bound the single phases.
            timeout=httpx.Timeout(60.0, connect=config.connect_timeout_s),
        )

    @property
    def model(self) -> str:
        return self.config.model

    @abstractmethod
    def auth_headers(self) -> dict[str, str]: ...

    @abstractmethod
    async def enrich(self, request: EnrichRequest, *, timeout_s: float) -> Completion:
        """One attempt, finished or failed (a ProviderError) within ``timeout_s``."""

    @abstractmethod
    async def health(self) -> Health:
        """A check that costs nothing (no generation)."""

    async def aclose(self) -> None:
        await self._client.aclose()

    def cost_usd(self, model: str, usage: Usage) -> float:
        price = self._prices.get(model)
        if price is None:
            return 0.0
        uncached = max(usage.input_tokens - usage.cached_input_tokens, 0)
        total = (
            uncached * price.input
            + usage.cached_input_tokens * price.cached_input
            + usage.output_tokens * price.output
        )
        return round(total / 1_000_000, 10)

    async def _send(
        self, method: str, path: str, *, timeout_s: float, body: Any = None
    ) -> httpx.Response:
        """Send one request; transport failures become retryable ProviderErrors."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self._client.request(method, path, json=body)
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(
                f"no answer within {timeout_s:.1f}s", provider=self.name
            ) from None
        except httpx.TransportError as exc:
            raise ProviderConnectError(
                self._clean(f"{type(exc).__name__}: {exc}"), provider=self.name
            ) from None

    def _clean(self, text: str, *, limit: int = 500) -> str:
        """Vendor text made safe for logs and topics: no secrets, bounded length."""
        text = redact(text, self._secrets)
        return text if len(text) <= limit else text[:limit] + "..."

    def _json_body(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProviderUnavailable(
                f"answer is not JSON: {self._clean(response.text, limit=200)!r}",
                provider=self.name,
                status_code=response.status_code,
            ) from None

    def _parse_enrichment(self, text: str | None, *, status: int) -> Enrichment:
        if text is None or not text.strip():
            raise InvalidOutput("blank content", provider=self.name, status_code=status)
        try:
            return Enrichment.model_validate_json(text)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "answer"
            raise InvalidOutput(
                f"answer does not match the Enrichment schema ({exc.error_count()} errors; "
                f"{where}: {first['msg']})",
                provider=self.name,
                status_code=status,
            ) from None


def retry_after_s(headers: httpx.Headers, *, now: float | None = None) -> float | None:
    """The delay a server asked for: ``retry-after-ms``, then ``retry-after`` in seconds or
    as an HTTP date. None when absent, unreadable or beyond MAX_RETRY_AFTER_S."""
    delay: float | None = None
    if "retry-after-ms" in headers:
        try:
            delay = float(headers["retry-after-ms"]) / 1000
        except ValueError:
            delay = None
    if delay is None and "retry-after" in headers:
        value = headers["retry-after"]
        try:
            delay = float(value)
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
            delay = when.timestamp() - (time.time() if now is None else now)
    if delay is None or delay < 0 or delay > MAX_RETRY_AFTER_S:
        return None
    return delay
