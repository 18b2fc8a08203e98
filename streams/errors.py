"""One exception hierarchy for the whole service.

StreamsError
├── ConfigurationError            settings or a config patch that cannot be used
├── ClusterRefused                the Kafka cluster refused the service, or cannot meet its settings
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
├── RequestTooLarge               one request needs more tokens than a per-minute limit allows
├── RecordRejected                a record on the raw topic is not a job (its cause says why)
├── PublishRejected               the broker refused a record for good (e.g. too large)
└── EnrichmentFailed              no provider gave a valid answer (carries every attempt)
    ├── BatchFailed               a batch-lane job's batch failed, and no live call saved it
    └── DeadlineExceeded          the job's time budget ran out first

Each class names the ``outcome`` recorded for the attempt on ``llm.calls``.
Messages never contain API keys: adapters pass vendor text through ``redact`` first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import ValidationError

from streams.models import Attempt, ErrorInfo, Usage
from streams.vocab import Outcome, Stage

__all__ = [
    "AuthenticationError",
    "BadRequest",
    "BatchFailed",
    "BudgetExhausted",
    "ClusterRefused",
    "ConfigurationError",
    "DeadlineExceeded",
    "EnrichmentFailed",
    "InvalidOutput",
    "ProviderConnectError",
    "ProviderError",
    "ProviderTimeout",
    "ProviderUnavailable",
    "PublishRejected",
    "QuotaExhausted",
    "RateLimited",
    "RecordRejected",
    "RequestTooLarge",
    "StreamsError",
    "describe",
    "failed_attempt",
    "redact",
]


class StreamsError(Exception):
    """Base of every error this service raises on purpose."""


class ConfigurationError(StreamsError):
    """Settings or a configuration patch that cannot be used."""


class ClusterRefused(StreamsError):
    """The Kafka cluster refused this service (authentication, TLS, a missing ACL), or cannot
    meet its settings (replication); the message names the cause in one line."""


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
        # What the vendor bills for an answer it did give (truncated, invalid): set by the
        # adapter that read it. None: no answer, nothing billed that anyone said.
        self.usage: Usage | None = None

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
    # Set by the adapter that read it: the answer's text when there was one, and whether it
    # was cut off at the token limit: what a repair needs.
    answer: str | None = None
    truncated: bool = False


class RequestTooLarge(StreamsError):
    """A single request needs more tokens than the per-minute limit allows."""


class RecordRejected(StreamsError):
    """A raw record that is not a job: not UTF-8, not JSON, or not a valid RawJob. The
    exception it was is its ``__cause__``, whose name its dead letter carries."""

    def __init__(self, message: str, *, stage: Stage, job_id: str | None) -> None:
        super().__init__(message)
        self.stage = stage
        self.job_id = job_id


class PublishRejected(StreamsError):
    """The broker refused a record for good (e.g. too large); retrying cannot help.
    ``attempts`` are the provider calls behind the result that could not be published."""

    def __init__(self, message: str, *, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(message)
        self.attempts = list(attempts)


class EnrichmentFailed(StreamsError):
    """No provider gave a valid answer; ``attempts`` holds the history for the dead letter."""

    def __init__(self, message: str, *, attempts: Sequence[Attempt] = ()) -> None:
        super().__init__(message)
        self.attempts = list(attempts)

    @property
    def caller_error(self) -> bool:
        """Whether every provider refused the request itself (e.g. an unknown model): the
        caller's to fix, not an outage."""
        return bool(self.attempts) and all(
            attempt.error is not None and attempt.error.type == BadRequest.__name__
            for attempt in self.attempts
        )


class BatchFailed(EnrichmentFailed):
    """A batch-lane job's batch failed or expired, and no live call saved it."""


class DeadlineExceeded(EnrichmentFailed):
    """The job's time budget ran out (raised where the wait or the call was cut short)."""

    outcome: ClassVar[Outcome] = "deadline_exceeded"


class BudgetExhausted(DeadlineExceeded):
    """The job's deadline ran out while every provider it could use was over its daily
    budget (LLM_BUDGETS): replay it once the day turns or a budget is raised."""


def failed_attempt(
    error: ProviderError | DeadlineExceeded,
    *,
    provider: str,
    model: str,
    attempt: int,
    latency_ms: float,
    batch_id: str | None = None,
    estimate: Usage | None = None,
    call_id: str | None = None,
) -> Attempt:
    """The record of one call that ended in ``error`` (with the usage its answer was billed,
    if it gave one); ``estimate``: what it is assumed to cost although no answer said (a
    call cut off after it was sent)."""
    answered = error.usage if isinstance(error, ProviderError) else None
    return Attempt(
        provider=provider,
        model=model,
        attempt=attempt,
        outcome=error.outcome,
        http_status=error.status_code if isinstance(error, ProviderError) else None,
        latency_ms=latency_ms,
        usage=answered or Usage(),
        error=ErrorInfo(type=type(error).__name__, message=str(error)),
        batch_id=batch_id,
        estimate=estimate,
        call_id=call_id,
    )


def redact(text: str, secrets: list[str]) -> str:
    """Remove every secret from text that came from outside (vendor error bodies)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def describe(exc: ValidationError, *, upper: bool = False, limit: int | None = None) -> str:
    """A validation error as "loc: msg; loc: msg" (locations upper-cased for settings, whose
    names are environment variables), at most ``limit`` of them."""
    errors = exc.errors()
    shown = errors if limit is None else errors[:limit]
    parts = []
    for error in shown:
        where = ".".join(str(part) for part in error["loc"])
        if not where:  # a check of several fields together says which in its message
            parts.append(error["msg"].removeprefix("Value error, "))
            continue
        parts.append(f"{where.upper() if upper else where}: {error['msg']}")
    more = len(errors) - len(shown)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
