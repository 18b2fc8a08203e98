"""The configuration each part receives: small frozen values, built from ``Settings`` by its
methods (``Settings.routing()`` and so on). A part never sees the whole settings object, so
what it depends on is written in its constructor's signature. No defaults here: the defaults
are the settings' own, in one place."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from streams.pricing import ModelPrice
from streams.vocab import Lane, ProviderName

__all__ = [
    "BatchConfig",
    "BreakerPolicy",
    "CacheConfig",
    "DriftConfig",
    "KafkaCluster",
    "KafkaConfig",
    "KafkaSecurity",
    "LimitsConfig",
    "ProviderConfig",
    "RegistryConfig",
    "Replication",
    "RetryPolicy",
    "RoutingConfig",
    "SaslMechanism",
    "SecurityProtocol",
    "ShadowCandidate",
    "TenantPolicy",
    "WaitingConfig",
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
    # Whether the server enforces a JSON Schema (OpenAI's ``json_schema`` response format);
    # else it takes only ``json_object`` and the schema goes in the prompt. Set for the
    # ``compatible`` provider; each vendor's adapter knows its own.
    json_schema: bool


class LimitsConfig(BaseModel):
    """One provider's limits for the whole consumer group; None means no limit of that kind.
    A model, not a dataclass: it is read from JSON (``LLM_PROVIDER_LIMITS``) and shown by
    ``/status``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=100)
    concurrency: int | None = Field(default=None, ge=1, le=10_000)


class TenantPolicy(BaseModel):
    """What one tenant may spend and use (``LLM_TENANTS``); a tenant not configured has the
    defaults: no budget, weight 1, every provider in the chain, the service's lane."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_budget_usd: float | None = Field(
        default=None, ge=0, description="USD per UTC day for the whole group; None: no budget"
    )
    weight: float = Field(
        default=1.0, gt=0, le=1000, description="its share of a binding provider limit"
    )
    providers: tuple[ProviderName, ...] | None = Field(
        default=None, min_length=1, description="the providers its jobs may go to; None: any"
    )
    lane: Lane | None = Field(default=None, description="its jobs' lane; None: LLM_LANE")


class ShadowCandidate(BaseModel):
    """A model to compare with production on live traffic (``LLM_SHADOW``): after a sampled
    job's answer is published, the candidate gets the same request, and the two answers are
    compared field by field. A model, not a dataclass: it is read from JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    provider: ProviderName
    model: str = Field(min_length=1, max_length=200)
    sample: float = Field(gt=0, le=1, description="the share of jobs, picked by job id")
    daily_budget_usd: float | None = Field(default=None, ge=0)
    # The group's limits for the candidate's own calls, as LLM_PROVIDER_LIMITS.
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    # Calls waiting or under way on this worker; a sampled job beyond them is dropped (and
    # counted).
    queue: int = Field(default=100, ge=1, le=10_000)
    instructions: str | None = Field(
        default=None, min_length=1, max_length=4000, description="a prompt variant"
    )
    variant: str | None = Field(
        default=None, pattern=r"^[A-Za-z0-9._-]{1,40}$", description="the variant's name"
    )

    @model_validator(mode="after")
    def _named_variant(self) -> ShadowCandidate:
        if (self.instructions is None) != (self.variant is None):
            raise ValueError("a prompt variant needs both 'instructions' and its 'variant' name")
        return self

    @property
    def name(self) -> str:
        """How reports and ``llm.shadow`` name it: provider/model[@variant]."""
        suffix = f"@{self.variant}" if self.variant else ""
        return f"{self.provider}/{self.model}{suffix}"


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


# Asked for on every call: made once (both are frozen).
NO_LIMITS = LimitsConfig()
UNCONFIGURED_TENANT = TenantPolicy()


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
    repair: bool  # an invalid answer is retried once with what was wrong with it
    repair_max_tokens: int  # a truncated answer is retried with twice the room, up to this
    tenants: Mapping[str, TenantPolicy]  # the configured ones; the rest have the defaults

    def limits_of(self, name: str) -> LimitsConfig:
        return self.limits.get(name, NO_LIMITS)

    def tenant(self, name: str) -> TenantPolicy:
        return self.tenants.get(name, UNCONFIGURED_TENANT)


SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
# AWS_MSK_IAM is OAUTHBEARER with a token AWS's signer makes (the name Redpanda Connect and
# librdkafka users know it by).
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "AWS_MSK_IAM"]


@dataclass(frozen=True, kw_only=True)
class KafkaSecurity:
    """How every client authenticates and encrypts (``KAFKA_SECURITY_PROTOCOL`` and the
    ``KAFKA_SASL_*`` / ``KAFKA_SSL_*`` settings), checked for consistency by the settings."""

    protocol: SecurityProtocol
    mechanism: SaslMechanism | None
    username: str | None
    password: SecretStr | None
    oauth_token_file: Path | None  # OAUTHBEARER: a token kept fresh by something else
    aws_region: str | None  # AWS_MSK_IAM
    cafile: Path | None  # None: the system's CAs
    certfile: Path | None  # mTLS: the client's certificate (and its key, if keyfile is None)
    keyfile: Path | None
    key_password: SecretStr | None

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True, kw_only=True)
class Replication:
    """What the topics this service creates get; None: worked out from the cluster (the
    smaller of 3 and its brokers; one less than that for min.insync.replicas, at least 1)."""

    factor: int | None
    min_insync: int | None

    def for_brokers(self, brokers: int) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) on a cluster of ``brokers``."""
        factor = self.factor or min(3, max(1, brokers))
        return factor, self.min_insync or max(1, factor - 1)


@dataclass(frozen=True, kw_only=True)
class KafkaCluster:
    """Where the cluster is, how to reach it, and how the topics made on it are replicated:
    the one value every Kafka client and topic this service makes is built from."""

    bootstrap_servers: str
    security: KafkaSecurity
    replication: Replication

    @classmethod
    def plaintext(cls, bootstrap_servers: str) -> KafkaCluster:
        """A cluster reached without TLS or SASL (a local broker), replication worked out."""
        return cls(
            bootstrap_servers=bootstrap_servers,
            security=KafkaSecurity(
                protocol="PLAINTEXT",
                mechanism=None,
                username=None,
                password=None,
                oauth_token_file=None,
                aws_region=None,
                cafile=None,
                certfile=None,
                keyfile=None,
                key_password=None,
            ),
            replication=Replication(factor=None, min_insync=None),
        )


@dataclass(frozen=True, kw_only=True)
class KafkaConfig:
    """The cluster and every topic's name."""

    cluster: KafkaCluster
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
    waiting: str
    shadow: str
    sent: str  # each call recorded before it leaves, until its ledger event settles it


@dataclass(frozen=True, kw_only=True)
class BatchConfig:
    """The batch lane's slice."""

    cluster: KafkaCluster
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
class WaitingConfig:
    """The waiting lane's slice."""

    cluster: KafkaCluster
    topic: str  # where the lane keeps its jobs, partitioned like the raw topic
    outcome_topics: tuple[str, ...]  # where a waiting job's outcome may be already
    partitions: int
    capacity: int  # the worker's calls in flight at most, shared among the tenants


@dataclass(frozen=True, kw_only=True)
class CacheConfig:
    """The repost cache's slice."""

    cluster: KafkaCluster
    topic: str
    max_entries: int
    max_age_s: float


@dataclass(frozen=True, kw_only=True)
class DriftConfig:
    """Drift on live traffic: the answers of the last ``window_days`` against the
    ``reference_days`` before them."""

    cluster: KafkaCluster
    topic: str  # the enriched jobs
    window_days: float
    reference_days: float


@dataclass(frozen=True, kw_only=True)
class RegistryConfig:
    """Where the topics' schemas are registered."""

    url: str
    basic_auth: SecretStr | None  # "user:password"


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The web view's slice."""

    app_id: str
    cluster: KafkaCluster
    control_topic: str  # where its state changes go
    admin_token: SecretStr | None
    process_batch_max: int
