"""What every provider adapter shares.

An adapter describes its vendor's wire format: the request (``build``), how to read an answer
(``read``), how to read an error (``error_for``) and a free health check. This class runs the
attempt around them: one pooled HTTP client, the attempt's time budget, transport failures,
local validation of the answer against the Enrichment schema, and pricing.
"""

from __future__ import annotations

import contextlib
import email.utils
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from httpx_aiohttp import AiohttpTransport
from pydantic import ValidationError

from streams.config.slices import ProviderConfig
from streams.deadline import Deadline
from streams.enrichment import Enrichment
from streams.errors import (
    AuthenticationError,
    BadRequest,
    InvalidOutput,
    ProviderConnectError,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    describe,
    redact,
)
from streams.models import Attempt, RawJob, Usage
from streams.providers.prompt import Repair, input_tokens_estimate

__all__ = [
    "Answer",
    "Completion",
    "EnrichRequest",
    "Health",
    "Provider",
    "duration_s",
    "retry_after_s",
]

# The longest server-asked delay worth honouring; beyond it, fall back instead of waiting
# (both official SDKs cap it: OpenAI at 120 s, Anthropic at 60 s).
MAX_RETRY_AFTER_S = 120.0
HEALTH_TIMEOUT_S = 5.0
JSON_CONTENT = {"content-type": "application/json"}
# Validation errors named in an InvalidOutput's message: what a repair tells the model.
REPAIR_ERRORS = 5


@dataclass(frozen=True, kw_only=True)
class EnrichRequest:
    job: RawJob
    model: str | None = None  # None: the provider's configured model
    max_tokens: int = 1024
    temperature: float | None = 0.2
    instructions: str | None = None  # a prompt variant's (a shadow candidate's); None: ours
    repair: Repair | None = None  # set on the one retry that tells the model its mistake


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What an adapter reads out of a vendor's successful response."""

    text: str | None
    finish_reason: str
    usage: Usage
    model: str | None = None


@dataclass(frozen=True, kw_only=True)
class Completion:
    enrichment: Enrichment
    text: str
    model: str
    finish_reason: str
    usage: Usage
    http_status: int

    def attempt(
        self,
        *,
        provider: str,
        attempt: int,
        latency_ms: float,
        batch_id: str | None = None,
        call_id: str | None = None,
        repaired: bool = False,
    ) -> Attempt:
        """The record of the call that gave this answer (``repaired``: to a repair)."""
        return Attempt(
            provider=provider,
            model=self.model,
            attempt=attempt,
            outcome="repaired" if repaired else "success",
            http_status=self.http_status,
            latency_ms=latency_ms,
            usage=self.usage,
            batch_id=batch_id,
            call_id=call_id,
        )


@dataclass(frozen=True, kw_only=True)
class Health:
    ok: bool
    detail: str


class Provider(ABC):
    name: str

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self._prices = config.prices
        self._secrets = [config.api_key.get_secret_value()] if config.api_key else []
        limits = httpx.Limits(
            max_connections=config.max_connections,
            max_keepalive_connections=config.max_connections,
        )
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=self.auth_headers(),
            # httpx's own pool, sized to the concurrency, served about 7x fewer calls per
            # second than aiohttp at 64 concurrent calls (bench/http_clients.py), so httpx
            # keeps the API and aiohttp carries the bytes; httpx-aiohttp is by httpx's
            # maintainer and is what the OpenAI SDK uses for the same purpose.
            transport=AiohttpTransport(limits=limits),
            # The attempt's cap and the job's deadline (Deadline.enforced around each call)
            # are the only bounds on a call, besides connecting: a generation sends nothing
            # until it is done, so a read timeout would cut a long answer off (and have it
            # paid twice) whatever LLM_ATTEMPT_TIMEOUT_S says.
            timeout=httpx.Timeout(None, connect=config.connect_timeout_s),
        )
        # Each generation path (one per model at most) joined to the base URL once: httpx
        # parses both again on every request otherwise (30 of its 50 µs to build one).
        self._urls: dict[str, httpx.URL] = {}

    @property
    def model(self) -> str:
        return self.config.model

    def cut_off_usage(self, request: EnrichRequest, model: str) -> Usage:
        """What a call cut off after it was sent is assumed to cost: its prompt (estimated
        from its length) and, as output, the request's ``max_tokens``. That is the most the
        vendor can bill for it, so a budget is never overshot by calls nobody saw finish;
        it over-counts a call cut off early."""
        usage = Usage(
            input_tokens=input_tokens_estimate(request.job), output_tokens=request.max_tokens
        )
        price = self._prices.get(model)
        return usage.priced(price) if price else usage

    # --- what each vendor module describes -------------------------------------------------

    @abstractmethod
    def auth_headers(self) -> dict[str, str]:
        """Headers sent with every request (auth and API version)."""

    @abstractmethod
    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        """The path and JSON body of one generation request."""

    @abstractmethod
    def read(self, data: Any, *, status: int) -> Answer:
        """The answer in a 200 response; raises InvalidOutput for refusals and truncation."""

    @abstractmethod
    def usage_of(self, data: Any) -> Usage:
        """The tokens a 200 response says it used (what the vendor bills)."""

    @abstractmethod
    def error_for(self, response: httpx.Response) -> ProviderError:
        """The error a non-200 response stands for."""

    @abstractmethod
    async def health(self) -> Health:
        """A check that costs nothing (no generation)."""

    # --- the attempt ---------------------------------------------------------------------------

    async def enrich(self, request: EnrichRequest, *, deadline: Deadline) -> Completion:
        """One attempt, finished or failed by ``deadline``: a ProviderError (ProviderTimeout
        when the attempt's own cap ran out) or DeadlineExceeded (the job's)."""
        model = request.model or self.model
        path, body = self.build(request, model)
        response = await self._send("POST", self._url(path), deadline=deadline, body=body)
        if response.status_code != 200:
            raise self.error_for(response)
        return self.complete(self._json_body(response), model=model, status=response.status_code)

    def complete(self, data: Any, *, model: str, status: int, batch: bool = False) -> Completion:
        """A successful answer's body read, validated and priced (``batch``: at the batch
        rate): the same for a live call and for one request of a batch."""
        price = self._prices.get(model)
        try:
            answer = self.read(data, status=status)
            enrichment = self._validate(answer.text, status=status)
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise ProviderUnavailable(
                f"answer has an unexpected shape ({type(exc).__name__}: {exc})",
                provider=self.name,
                status_code=status,
            ) from None
        except InvalidOutput as exc:  # an answer all the same: the vendor bills its tokens
            with contextlib.suppress(KeyError, IndexError, TypeError, AttributeError):
                billed = self.usage_of(data)
                exc.usage = billed.priced(price, batch=batch) if price else billed
            raise
        usage = answer.usage.priced(price, batch=batch) if price else answer.usage
        return Completion(
            enrichment=enrichment,
            text=answer.text or "",
            model=answer.model or model,
            finish_reason=answer.finish_reason,
            usage=usage,
            http_status=status,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    # --- helpers for the vendor modules ----------------------------------------------------------

    async def _send(
        self,
        method: str,
        path: str | httpx.URL,
        *,
        deadline: Deadline,
        body: Any = None,
        **content: Any,
    ) -> httpx.Response:
        """Send one request (``body`` as JSON, or httpx's ``files``/``data``/``content``);
        transport failures become retryable ProviderErrors."""
        if body is not None:
            # orjson: 1.6 µs for a generation's 3 KB body, where httpx's json= (the stdlib's
            # encoder) takes 22; the same compact UTF-8 bytes.
            content = {"content": orjson.dumps(body), "headers": JSON_CONTENT} | content
        try:
            async with deadline.enforced(f"waiting for {self.name}"):
                return await self._client.request(method, path, **content)
        except httpx.ConnectTimeout as exc:
            # the aiohttp transport reports a refused connection as a connect timeout too
            cause = exc.__cause__ or exc
            raise ProviderConnectError(
                self._clean(f"could not connect: {type(cause).__name__}: {cause}"),
                provider=self.name,
            ) from None
        except (TimeoutError, httpx.TimeoutException):
            raise ProviderTimeout(
                f"no answer within {deadline.budget_s:.1f}s", provider=self.name
            ) from None
        except httpx.TransportError as exc:
            raise ProviderConnectError(
                self._clean(f"{type(exc).__name__}: {exc}"), provider=self.name
            ) from None

    def _url(self, path: str) -> httpx.URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = self._client.build_request("GET", path).url
        return url

    async def _get_json(self, path: str) -> Any:
        """A health-check GET: the JSON body, or a ProviderError."""
        response = await self._send("GET", path, deadline=Deadline.after(HEALTH_TIMEOUT_S))
        if response.status_code != 200:
            raise self.error_for(response)
        return self._json_body(response)

    def _clean(self, text: str, *, limit: int = 500) -> str:
        """Vendor text made safe for logs and topics: no secrets, bounded length."""
        text = redact(text, self._secrets)
        return text if len(text) <= limit else text[:limit] + "..."

    def _json_body(self, response: httpx.Response) -> Any:
        try:
            return orjson.loads(response.content)
        except orjson.JSONDecodeError:
            raise ProviderUnavailable(
                f"answer is not JSON: {self._clean(response.text, limit=200)!r}",
                provider=self.name,
                status_code=response.status_code,
            ) from None

    def _error_object(self, response: httpx.Response) -> dict[str, Any]:
        """The ``error`` member of an error body as a dict (``{"message": text}`` when the
        vendor sends a bare string, ``{}`` when the body is not JSON)."""
        try:
            error = response.json().get("error") or {}
        except (ValueError, AttributeError):
            return {}
        return error if isinstance(error, dict) else {"message": str(error)}

    def _invalid(
        self, message: str, *, status: int, truncated: bool = False, answer: str | None = None
    ) -> InvalidOutput:
        error = InvalidOutput(message, provider=self.name, status_code=status)
        error.truncated, error.answer = truncated, answer
        return error

    def _error(
        self,
        response: httpx.Response,
        message: str,
        *,
        retry_after: float | None = None,
        final: type[ProviderError] | None = None,
    ) -> ProviderError:
        """The error for a status code, with the vendor's own retry hints:
        ``x-should-retry`` (OpenAI, Anthropic) wins, then ``final`` (a vendor special case),
        then the status."""
        status = response.status_code
        message = self._clean(message)
        delay = retry_after if retry_after is not None else retry_after_s(response.headers)
        kwargs: dict[str, Any] = {"provider": self.name, "status_code": status}
        should_retry = response.headers.get("x-should-retry")
        if should_retry == "true" and final is None:
            return ProviderUnavailable(message, retry_after_s=delay, **kwargs)
        if final is not None:
            return final(message, **kwargs)
        if status in (401, 403):
            return AuthenticationError(message, **kwargs)
        if status == 402:
            return QuotaExhausted(message, **kwargs)
        if should_retry == "false":
            return BadRequest(message, **kwargs)
        if status == 429:
            return RateLimited(message, retry_after_s=delay, **kwargs)
        if status in (408, 409) or status >= 500:
            return ProviderUnavailable(message, retry_after_s=delay, **kwargs)
        return BadRequest(message, **kwargs)

    def _validate(self, text: str | None, *, status: int) -> Enrichment:
        if text is None or not text.strip():
            raise self._invalid("blank content", status=status)
        try:
            enrichment = Enrichment.model_validate_json(text)
        except ValidationError as exc:
            raise self._invalid(
                f"answer does not match the Enrichment schema ({exc.error_count()} errors; "
                f"{describe(exc, limit=REPAIR_ERRORS)})",
                status=status,
                answer=text,
            ) from None
        return enrichment


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
    return _bounded(delay)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def duration_s(value: object) -> float | None:
    """A protobuf JSON duration such as Gemini's ``RetryInfo.retryDelay`` ("27s", "1.5s")."""
    match = _DURATION.match(value) if isinstance(value, str) else None
    return _bounded(float(match.group(1))) if match else None


def _bounded(delay: float | None) -> float | None:
    if delay is None or delay < 0 or delay > MAX_RETRY_AFTER_S:
        return None
    return delay
