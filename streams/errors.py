"""One exception hierarchy for the whole service.

StreamsError
├── ConfigurationError            settings or a config patch that cannot be used
├── ProviderError                 one provider attempt failed (carries provider and HTTP status)
│   ├── RetryableProviderError    worth another try, maybe after ``retry_after_s``
│   │   ├── ProviderTimeout       connect/read/write timeout
│   │   ├── ProviderConnectError  the connection could not be made or broke
│   │   ├── RateLimited           429 and vendor equivalents
│   │   └── ProviderUnavailable   408, 409, 5xx, overloaded
│   └── FinalProviderError        the same request will fail again: fall back instead
│       ├── AuthenticationError   401, 403, a rejected key
│       ├── BadRequest            400, 404, 422: the request or the model name is wrong
│       ├── QuotaExhausted        billing: out of credit or quota
│       └── InvalidOutput         refusal, truncated, blank, non-JSON or schema-invalid answer
├── DeadlineExceeded              the job's time budget ran out
└── EnrichmentFailed              every attempt on every provider failed

Each class names the ``outcome`` recorded for the attempt on ``llm.calls``.
Messages never contain API keys: adapters pass vendor text through ``redact`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Literal

if TYPE_CHECKING:
    from streams.models import Attempt

Outcome = Literal[
    "success",
    "error",
    "timeout",
    "rate_limited",
    "invalid_output",
    "circuit_open",
    "deadline_exceeded",
    "cache_hit",  # a repost served from the cache: no provider was called (streams/cache.py)
]


class StreamsError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigurationError(StreamsError):
    """Settings or a configuration patch that cannot be used."""


class ProviderError(StreamsError):
    outcome: ClassVar[Outcome] = "error"
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        status_code: int | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.retry_after_s = retry_after_s

    def __str__(self) -> str:
        status = f" (HTTP {self.status_code})" if self.status_code is not None else ""
        return f"{self.provider}{status}: {self.message}"


class RetryableProviderError(ProviderError):
    retryable = True


class ProviderTimeout(RetryableProviderError):
    outcome = "timeout"


class ProviderConnectError(RetryableProviderError):
    pass


class RateLimited(RetryableProviderError):
    outcome = "rate_limited"


class ProviderUnavailable(RetryableProviderError):
    pass


class FinalProviderError(ProviderError):
    pass


class AuthenticationError(FinalProviderError):
    pass


class BadRequest(FinalProviderError):
    pass


class QuotaExhausted(FinalProviderError):
    pass


class InvalidOutput(FinalProviderError):
    outcome = "invalid_output"


class DeadlineExceeded(StreamsError):
    outcome: ClassVar[Outcome] = "deadline_exceeded"


class EnrichmentFailed(StreamsError):
    """Every attempt failed; ``attempts`` holds the history for the dead letter."""

    def __init__(self, message: str, *, attempts: list[Attempt]) -> None:
        super().__init__(message)
        self.attempts = attempts


def redact(text: str, secrets: list[str]) -> str:
    """Remove every secret from text that came from outside (vendor error bodies)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text
