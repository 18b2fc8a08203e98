"""The configuration each part receives: small frozen values, built from ``Settings`` by its
methods (``Settings.routing()`` and so on). A part never sees the whole settings object, so
what it depends on is written in its constructor's signature. No defaults here: the defaults
are the settings' own, in one place."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from streams.pricing import ModelPrice
from streams.vocab import Lane

__all__ = [
    "BatchConfig",
    "BreakerPolicy",
    "CacheConfig",
    "KafkaConfig",
    "LimitsConfig",
    "ProviderConfig",
    "RegistryConfig",
    "RetryPolicy",
    "RoutingConfig",
    "WebConfig",
]


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """What one adapter needs."""

    name: str
    base_url: str
    api_key: SecretStr | None
    model: str
    connect_timeout_s: float
    max_connections: int
    prices: Mapping[str, ModelPrice]


class LimitsConfig(BaseModel):
    """One provider's limits for the whole consumer group; None means no limit of that kind.
    A model, not a dataclass: it is read from JSON (``LLM_PROVIDER_LIMITS``) and shown by
    ``/status``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=100)
    concurrency: int | None = Field(default=None, ge=1, le=10_000)


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Per provider: how many attempts, and the backoff between them."""

    attempts: int
    initial_backoff_s: float
    max_backoff_s: float

    def backoff_s(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, initial * 2**(retry-1))] for retry 1, 2, ..."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2 ** (retry - 1))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True, kw_only=True)
class BreakerPolicy:
    """When a provider's circuit opens, and for how long."""

    consecutive_failures: int
    failure_ratio: float
    window: int  # the ratio is judged over the last `window` calls, once there are as many
    cooldown_s: float


@dataclass(frozen=True, kw_only=True)
class RoutingConfig:
    """The router's slice; replaced whole when a config patch arrives."""

    chain: tuple[str, ...]
    strategy: Literal["priority", "latency"]
    default_deadline_s: float
    attempt_timeout_s: float
    max_output_tokens: int
    temperature: float
    retry: RetryPolicy
    breaker: BreakerPolicy
    limits: Mapping[str, LimitsConfig]  # the configured ones; the rest have none
    budgets: Mapping[str, float]  # USD per UTC day: per provider, and TOTAL_BUDGET

    def limits_of(self, name: str) -> LimitsConfig:
        return self.limits.get(name, LimitsConfig())


@dataclass(frozen=True, kw_only=True)
class KafkaConfig:
    """The broker and every topic's name."""

    bootstrap_servers: str
    partitions: int
    raw: str
    enriched: str
    dead_letter: str
    calls: str
    stats: str
    control: str
    stats_resets: str
    cache: str
    cache_retention_s: float
    batch: str


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """The batch lane's slice."""

    bootstrap_servers: str
    topic: str  # where the lane keeps its jobs and batches, partitioned like the raw topic
    outcome_topics: tuple[str, ...]  # where a finishing batch's results may be already
    partitions: int
    default_lane: Lane
    max_jobs: int
    max_bytes: int
    max_age_s: float
    poll_s: float
    price_version: str


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """The repost cache's slice."""

    bootstrap_servers: str
    topic: str
    max_entries: int
    max_age_s: float


@dataclass(frozen=True, kw_only=True)
class RegistryConfig:
    """Where the topics' schemas are registered."""

    url: str
    basic_auth: SecretStr | None  # "user:password"


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The web view's slice."""

    app_id: str
    bootstrap_servers: str
    control_topic: str  # where its state changes go
    admin_token: SecretStr | None
    process_batch_max: int
