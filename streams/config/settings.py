"""Configuration from the environment (pydantic-settings).

Every field reads the environment variable of the same name in upper case, e.g.
``kafka_bootstrap_servers`` <- ``KAFKA_BOOTSTRAP_SERVERS``. Invalid values fail at start-up
with one message naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from streams.config.slices import (
    BatchConfig,
    BreakerPolicy,
    CacheConfig,
    DriftConfig,
    KafkaCluster,
    KafkaConfig,
    KafkaSecurity,
    LimitsConfig,
    ProviderConfig,
    RegistryConfig,
    Replication,
    RetryPolicy,
    RoutingConfig,
    SaslMechanism,
    SecurityProtocol,
    ShadowCandidate,
    TenantPolicy,
    WaitingConfig,
    WebConfig,
)
from streams.errors import ConfigurationError, describe
from streams.models import Tenant
from streams.pricing import DEFAULT_PRICES, PRICE_VERSION, ModelPrice
from streams.registry import SPECS
from streams.vocab import PROVIDER_NAMES, TOTAL_BUDGET, ProviderName

__all__ = ["Settings", "load_settings", "runtime_keys"]


def _provider_fields() -> dict[str, Any]:
    """Three variables per provider, named by its registry entry: its key (switches it to
    the real endpoint), its base URL (points it at the simulator) and its model."""
    fields: dict[str, Any] = {}
    for spec in SPECS.values():
        fields[spec.key_variable.lower()] = (SecretStr | None, None)
        fields[spec.url_variable.lower()] = (HttpUrl, HttpUrl(spec.default_base_url))
        fields[spec.model_variable.lower()] = (str, spec.default_model)
    return fields


# Marks a setting a running worker takes on (``llm-streams config set``); the rest need a
# restart. What a patch may change is read off these marks (``runtime_keys``).
RUNTIME: dict[str, Any] = {"runtime": True}


class _Base(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", validate_default=True, frozen=True
    )


if TYPE_CHECKING:
    _ProviderFields = _Base
else:
    _ProviderFields = create_model("_ProviderFields", __base__=_Base, **_provider_fields())


class Settings(_ProviderFields):
    """Every setting. Parts never receive this object whole: each gets its slice (a small
    frozen value, e.g. ``routing()``), built by the methods at the end."""

    # Kafka: where, and how every client authenticates and encrypts
    kafka_bootstrap_servers: str = Field(default="localhost:9092", min_length=1)
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: SaslMechanism | None = None
    kafka_sasl_username: str | None = Field(default=None, min_length=1)
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_oauth_token_file: Path | None = None
    # SASL over an unencrypted connection sends the records, and with PLAIN the password
    # itself, in clear: only when said on purpose.
    kafka_allow_unencrypted_sasl: bool = False
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # AWS_MSK_IAM's region (the variable AWS's own tools read).
    aws_region: str | None = None
    # None: the smaller of 3 and the cluster's brokers; min.insync.replicas one less (>= 1).
    llm_topic_replication_factor: int | None = Field(default=None, ge=1, le=32)
    llm_topic_min_insync_replicas: int | None = Field(default=None, ge=1, le=32)
    llm_app_id: str = Field(default="llm-enricher", min_length=1)
    llm_topic_raw: str = "jobs.raw"
    llm_topic_enriched: str = "jobs.enriched"
    llm_topic_dead_letter: str = "jobs.dead-letter"
    llm_topic_calls: str = "llm.calls"
    llm_topic_stats: str = "llm.stats"
    llm_topic_control: str = "llm.control"
    llm_topic_stats_resets: str = "llm.stats-resets"
    llm_topic_replays: str = "llm.replays"
    llm_topic_cache: str = "llm.cache"
    llm_topic_batch: str = "llm.batch"
    llm_topic_waiting: str = "llm.waiting"
    llm_topic_sent: str = "llm.sent"
    llm_topic_shadow: str = "llm.shadow"
    llm_topic_evals: str = "llm.evals"
    llm_topic_partitions: int = Field(default=4, ge=1, le=1024)
    llm_data_dir: Path = Path(".data/worker")
    # This worker's stable name in the group (Kafka's static membership): restarted within
    # the session timeout under the same name, it takes its partitions back without moving
    # anyone else's. Unset: a new member each start.
    llm_worker_id: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9._-]+$"
    )
    # At a rebalance the records not sent to a provider are given back at once; calls under
    # way get this long to finish, then are abandoned (billed as estimated, and redone by the
    # partition's next owner).
    llm_revoke_grace_s: float = Field(default=5.0, ge=0, le=60)
    # Each call is recorded on LLM_TOPIC_SENT before it leaves, so that a worker killed with
    # calls under way leaves them on the bill. A call recorded and never settled by its
    # ledger event is taken for a dead worker's this long after its job's deadline.
    llm_write_ahead: bool = True
    llm_unsettled_grace_s: float = Field(default=120.0, ge=1, le=3600)
    # How long a silent (crashed) worker keeps its partitions before the group moves them.
    llm_broker_session_timeout_s: float = Field(default=30.0, ge=6, le=300)
    # How often finished records' offsets are committed: the work a crash makes redo.
    llm_commit_interval_s: float = Field(default=1.0, ge=0.1, le=60)
    # How long a stopping worker may take (with the broker gone, Faust's own steps take
    # minutes); past it the process exits, and what it had not committed is redone.
    llm_shutdown_timeout_s: float = Field(default=10.0, ge=1, le=600)

    # Processing
    llm_worker_concurrency: int = Field(default=64, ge=1, le=4096)
    # A self-hosted server is opted into: not in the default chain.
    llm_provider_chain: Annotated[list[ProviderName], NoDecode] = Field(
        default=[name for name in PROVIDER_NAMES if name != "compatible"],
        json_schema_extra=RUNTIME,
    )
    llm_job_deadline_s: float = Field(json_schema_extra=RUNTIME, default=45.0, gt=0, le=300)
    llm_attempt_timeout_s: float = Field(json_schema_extra=RUNTIME, default=30.0, gt=0, le=300)
    llm_retry_attempts: int = Field(json_schema_extra=RUNTIME, default=2, ge=1, le=10)
    llm_retry_initial_backoff_s: float = Field(json_schema_extra=RUNTIME, default=0.25, ge=0, le=60)
    llm_retry_max_backoff_s: float = Field(json_schema_extra=RUNTIME, default=8.0, ge=0, le=300)
    llm_routing_strategy: Literal["priority", "latency"] = Field(
        default="priority", json_schema_extra=RUNTIME
    )
    llm_breaker_failures: int = Field(json_schema_extra=RUNTIME, default=10, ge=1, le=1000)
    llm_breaker_failure_ratio: float = Field(json_schema_extra=RUNTIME, default=0.5, gt=0, le=1)
    llm_breaker_window: int = Field(json_schema_extra=RUNTIME, default=50, ge=2, le=10_000)
    llm_breaker_cooldown_s: float = Field(json_schema_extra=RUNTIME, default=30.0, gt=0, le=3600)
    # e.g. {"openai": {"rpm": 500, "tpm": 200000, "concurrency": 32}}
    llm_provider_limits: dict[str, LimitsConfig] = Field(
        json_schema_extra=RUNTIME, default_factory=dict
    )
    # USD per UTC day for the whole consumer group, per provider and "total" for the service,
    # e.g. {"openai": 50, "total": 80}.
    llm_budgets: dict[str, Annotated[float, Field(ge=0)]] = Field(
        json_schema_extra=RUNTIME, default_factory=dict
    )
    # Per tenant: its daily budget, its weight in a binding limit, the providers it may use and
    # its jobs' lane, e.g. {"bulk": {"daily_budget_usd": 20, "weight": 1, "lane": "auto"},
    # "fresh": {"weight": 3, "providers": ["openai"]}}.
    llm_tenants: dict[Tenant, TenantPolicy] = Field(json_schema_extra=RUNTIME, default_factory=dict)
    llm_max_output_tokens: int = Field(json_schema_extra=RUNTIME, default=1024, ge=16, le=65536)
    llm_temperature: float = Field(json_schema_extra=RUNTIME, default=0.2, ge=0, le=2)
    # Repair instead of re-buying: an answer that fails validation is asked again once, on
    # the same provider, with the errors given back; a truncated one with twice the room,
    # up to LLM_REPAIR_MAX_TOKENS.
    llm_repair: bool = Field(json_schema_extra=RUNTIME, default=True)
    llm_repair_max_tokens: int = Field(json_schema_extra=RUNTIME, default=4096, ge=16, le=65536)
    # Candidate models shadowing production, e.g. [{"provider": "openai", "model":
    # "gpt-5.4-nano", "sample": 0.1, "daily_budget_usd": 5, "limits": {"rpm": 60}}].
    llm_shadow: list[ShadowCandidate] = Field(json_schema_extra=RUNTIME, default_factory=list)
    llm_prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    llm_price_version: str = PRICE_VERSION
    # Reposts: an identical job (normalised title, company, description, options) reuses
    # the earlier enrichment instead of calling a provider.
    llm_cache_enabled: bool = True
    llm_cache_max_entries: int = Field(default=100_000, ge=1)
    llm_cache_max_age_s: float = Field(default=30 * 24 * 3600, gt=0)
    # Drift on live traffic: the last window's answers against the days before it.
    llm_drift_window_days: float = Field(default=1.0, gt=0, le=30)
    llm_drift_reference_days: float = Field(default=7.0, gt=0, le=90)

    # The batch lane: jobs that can wait go to the vendors' Batch APIs at about half the price,
    # gathered per provider and model until this many, this many bytes or this old.
    llm_lane: Literal["live", "batch", "auto"] = "live"
    llm_batch_max_jobs: int = Field(default=1000, ge=1, le=50_000)
    llm_batch_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024)
    llm_batch_max_age_s: float = Field(default=300.0, ge=0, le=24 * 3600)
    llm_batch_poll_s: float = Field(default=30.0, gt=0, le=3600)

    # Providers (besides the three variables per provider that come from the registry)
    # What the OpenAI-compatible server takes: json_schema (vLLM, llama.cpp, SGLang, LM Studio)
    # or only json_object (then the schema goes in the prompt, and is checked here only).
    compatible_response_format: Literal["json_schema", "json_object"] = "json_schema"
    llm_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    # Unset: as many as the worker may have calls under way to the provider
    # (``Settings.calls_at_once``), so the pool is never what bounds the concurrency.
    llm_max_connections_per_provider: int | None = Field(default=None, ge=1, le=20_000)

    # Confluent-compatible Schema Registry (its API's base URL); unset: plain JSON records.
    llm_schema_registry_url: str | None = None
    # "user:password" for a hosted registry's basic auth (Confluent's basic.auth.user.info).
    llm_schema_registry_basic_auth: SecretStr | None = None

    # Web view and logging
    llm_service_host: str = "127.0.0.1"
    llm_service_port: int = Field(default=6066, ge=1, le=65535)
    llm_service_log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # Bearer token for the web view's state-changing endpoints; unset = they answer 403.
    llm_service_admin_token: SecretStr | None = None
    llm_process_batch_max: int = Field(default=50, ge=1, le=1000)

    @field_validator("llm_provider_chain", mode="before")
    @classmethod
    def _split_chain(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().lower() for part in value.split(",") if part.strip()]
        return value

    @field_validator("llm_provider_limits", mode="after")
    @classmethod
    def _known_providers(cls, value: dict[str, LimitsConfig]) -> dict[str, LimitsConfig]:
        unknown = set(value) - set(PROVIDER_NAMES)
        if unknown:
            raise ValueError(f"unknown provider(s): {', '.join(sorted(unknown))}")
        return value

    @field_validator("llm_budgets", mode="after")
    @classmethod
    def _budgeted_providers(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = set(value) - {*PROVIDER_NAMES, TOTAL_BUDGET}
        if unknown:
            raise ValueError(
                f"unknown provider(s): {', '.join(sorted(unknown))} (or {TOTAL_BUDGET!r})"
            )
        return value

    @field_validator("llm_service_log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("llm_prices", mode="after")
    @classmethod
    def _merge_prices(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        # An override names only the models it changes; the rest keep their defaults.
        return {**DEFAULT_PRICES, **value}

    @field_validator("kafka_security_protocol", "kafka_sasl_mechanism", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_kafka_security(self) -> Settings:
        problems = _security_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        factor, min_insync = self.llm_topic_replication_factor, self.llm_topic_min_insync_replicas
        if factor is not None and min_insync is not None and min_insync > factor:
            raise ValueError(
                f"LLM_TOPIC_MIN_INSYNC_REPLICAS ({min_insync}) is above "
                f"LLM_TOPIC_REPLICATION_FACTOR ({factor}): no write could ever be acknowledged"
            )
        return self

    @model_validator(mode="after")
    def _check_chain(self) -> Settings:
        if not self.llm_provider_chain:
            raise ValueError("LLM_PROVIDER_CHAIN names no provider")
        if len(set(self.llm_provider_chain)) != len(self.llm_provider_chain):
            raise ValueError("LLM_PROVIDER_CHAIN names a provider twice")
        if self.llm_attempt_timeout_s > self.llm_job_deadline_s:
            raise ValueError("LLM_ATTEMPT_TIMEOUT_S must not exceed LLM_JOB_DEADLINE_S")
        names = [candidate.name for candidate in self.llm_shadow]
        if len(set(names)) != len(names):
            raise ValueError("LLM_SHADOW names a candidate twice (give a prompt variant a name)")
        partitions = self.llm_topic_partitions
        shadow_limits = {f"shadow {c.name}": c.limits for c in self.llm_shadow}
        for name, limits in (self.llm_provider_limits | shadow_limits).items():
            # Each worker holds (limit * its partitions / all partitions) of a limit; below one
            # per partition, a worker could be left with none.
            for kind, value in (("rpm", limits.rpm), ("concurrency", limits.concurrency)):
                if value is not None and value < partitions:
                    raise ValueError(
                        f"LLM_PROVIDER_LIMITS: {name} {kind} {value} is below "
                        f"LLM_TOPIC_PARTITIONS ({partitions}): the limit is shared out by partition"
                    )
        return self

    def calls_at_once(self, provider: str) -> int:
        """The most calls this worker may have under way to ``provider``: each of its call
        slots (LLM_WORKER_CONCURRENCY), and each shadow candidate's there (its queue, or
        its concurrency limit if lower)."""
        shadow = sum(
            min(c.queue + 1, c.limits.concurrency or c.queue + 1)
            for c in self.llm_shadow
            if c.provider == provider
        )
        return self.llm_worker_concurrency + shadow

    def concurrency_bounds(self) -> list[str]:
        """One line per bound set below the worker's concurrency, saying what it costs: a
        worker asked for 1,024 calls at once and held to 256 by one of them gets a quarter
        of the throughput it asked for at any latency."""
        concurrency = self.llm_worker_concurrency
        lines = []
        pool = self.llm_max_connections_per_provider
        for name in self.llm_provider_chain:
            wanted = self.calls_at_once(name)
            if pool is not None and pool < wanted:
                lines.append(
                    f"LLM_MAX_CONNECTIONS_PER_PROVIDER ({pool}) holds {name} to {pool} calls "
                    f"at once, below the {wanted} this worker may make "
                    f"(LLM_WORKER_CONCURRENCY {concurrency}): at most {pool / wanted:.0%} of "
                    "the throughput asked for, at any latency"
                )
            limit = self.llm_provider_limits.get(name)
            if (
                limit is not None
                and limit.concurrency is not None
                and limit.concurrency < concurrency
            ):
                lines.append(
                    f"LLM_PROVIDER_LIMITS holds {name} to {limit.concurrency} calls at once for "
                    f"the group, below LLM_WORKER_CONCURRENCY ({concurrency}): a worker alone "
                    f"calls {name} at {limit.concurrency / concurrency:.0%} of its concurrency"
                )
        return lines

    # --- the slice each part receives ---------------------------------------------------

    def provider(self, name: str) -> ProviderConfig:
        spec = SPECS[name]
        return ProviderConfig(
            name=name,
            base_url=str(getattr(self, spec.url_variable.lower())).rstrip("/"),
            api_key=getattr(self, spec.key_variable.lower()),
            model=getattr(self, spec.model_variable.lower()),
            connect_timeout_s=self.llm_connect_timeout_s,
            max_connections=self.llm_max_connections_per_provider or self.calls_at_once(name),
            prices=self.llm_prices,
            json_schema=name != "compatible" or self.compatible_response_format == "json_schema",
        )

    def routing(self) -> RoutingConfig:
        return RoutingConfig(
            chain=tuple(self.llm_provider_chain),
            strategy=self.llm_routing_strategy,
            default_deadline_s=self.llm_job_deadline_s,
            attempt_timeout_s=self.llm_attempt_timeout_s,
            max_output_tokens=self.llm_max_output_tokens,
            temperature=self.llm_temperature,
            retry=RetryPolicy(
                attempts=self.llm_retry_attempts,
                initial_backoff_s=self.llm_retry_initial_backoff_s,
                max_backoff_s=self.llm_retry_max_backoff_s,
            ),
            breaker=BreakerPolicy(
                consecutive_failures=self.llm_breaker_failures,
                failure_ratio=self.llm_breaker_failure_ratio,
                window=self.llm_breaker_window,
                cooldown_s=self.llm_breaker_cooldown_s,
            ),
            limits=dict(self.llm_provider_limits),
            budgets=dict(self.llm_budgets),
            repair=self.llm_repair,
            repair_max_tokens=self.llm_repair_max_tokens,
            tenants=dict(self.llm_tenants),
        )

    def cluster(self) -> KafkaCluster:
        return KafkaCluster(
            bootstrap_servers=self.kafka_bootstrap_servers,
            security=KafkaSecurity(
                protocol=self.kafka_security_protocol,
                mechanism=self.kafka_sasl_mechanism,
                username=self.kafka_sasl_username,
                password=self.kafka_sasl_password,
                oauth_token_file=self.kafka_sasl_oauth_token_file,
                aws_region=self.aws_region,
                cafile=self.kafka_ssl_cafile,
                certfile=self.kafka_ssl_certfile,
                keyfile=self.kafka_ssl_keyfile,
                key_password=self.kafka_ssl_key_password,
            ),
            replication=Replication(
                factor=self.llm_topic_replication_factor,
                min_insync=self.llm_topic_min_insync_replicas,
            ),
        )

    def kafka(self) -> KafkaConfig:
        return KafkaConfig(
            cluster=self.cluster(),
            partitions=self.llm_topic_partitions,
            raw=self.llm_topic_raw,
            enriched=self.llm_topic_enriched,
            dead_letter=self.llm_topic_dead_letter,
            calls=self.llm_topic_calls,
            stats=self.llm_topic_stats,
            control=self.llm_topic_control,
            stats_resets=self.llm_topic_stats_resets,
            cache=self.llm_topic_cache,
            cache_retention_s=self.llm_cache_max_age_s,
            batch=self.llm_topic_batch,
            waiting=self.llm_topic_waiting,
            shadow=self.llm_topic_shadow,
            sent=self.llm_topic_sent,
        )

    def shadow(self) -> tuple[ShadowCandidate, ...]:
        return tuple(self.llm_shadow)

    def batch(self) -> BatchConfig:
        return BatchConfig(
            cluster=self.cluster(),
            topic=self.llm_topic_batch,
            outcome_topics=(self.llm_topic_enriched, self.llm_topic_dead_letter),
            partitions=self.llm_topic_partitions,
            default_lane=self.llm_lane,
            max_jobs=self.llm_batch_max_jobs,
            max_bytes=self.llm_batch_max_bytes,
            max_age_s=self.llm_batch_max_age_s,
            poll_s=self.llm_batch_poll_s,
            price_version=self.llm_price_version,
        )

    def waiting(self) -> WaitingConfig:
        return WaitingConfig(
            cluster=self.cluster(),
            topic=self.llm_topic_waiting,
            outcome_topics=(self.llm_topic_enriched, self.llm_topic_dead_letter),
            partitions=self.llm_topic_partitions,
            capacity=self.llm_worker_concurrency,
        )

    def drift(self) -> DriftConfig:
        return DriftConfig(
            cluster=self.cluster(),
            topic=self.llm_topic_enriched,
            window_days=self.llm_drift_window_days,
            reference_days=self.llm_drift_reference_days,
        )

    def cache(self) -> CacheConfig | None:
        if not self.llm_cache_enabled:
            return None
        return CacheConfig(
            cluster=self.cluster(),
            topic=self.llm_topic_cache,
            max_entries=self.llm_cache_max_entries,
            max_age_s=self.llm_cache_max_age_s,
        )

    def schema_registry(self) -> RegistryConfig | None:
        if self.llm_schema_registry_url is None:
            return None
        return RegistryConfig(
            url=self.llm_schema_registry_url, basic_auth=self.llm_schema_registry_basic_auth
        )

    def web(self) -> WebConfig:
        return WebConfig(
            app_id=self.llm_app_id,
            cluster=self.cluster(),
            control_topic=self.llm_topic_control,
            admin_token=self.llm_service_admin_token,
            process_batch_max=self.llm_process_batch_max,
        )


_SASL = ("SASL_PLAINTEXT", "SASL_SSL")
_PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


def _security_problems(settings: Settings) -> list[str]:
    """What makes the Kafka security settings unusable together, each said with the
    variables to change."""
    protocol, mechanism = settings.kafka_security_protocol, settings.kafka_sasl_mechanism
    said = f"KAFKA_SECURITY_PROTOCOL={protocol}"
    problems = []
    if protocol in _SASL and mechanism is None:
        problems.append(
            f"{said} needs KAFKA_SASL_MECHANISM (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, "
            "OAUTHBEARER or AWS_MSK_IAM)"
        )
    if protocol not in _SASL and mechanism is not None:
        problems.append(
            f"KAFKA_SASL_MECHANISM is set but {said} does not authenticate with SASL "
            "(SASL_SSL does)"
        )
    if protocol == "SASL_PLAINTEXT" and not settings.kafka_allow_unencrypted_sasl:
        problems.append(
            f"{said} sends every record{' and the password' if mechanism == 'PLAIN' else ''} "
            "unencrypted: use SASL_SSL, or set KAFKA_ALLOW_UNENCRYPTED_SASL=true to mean it"
        )
    if (
        protocol in _SASL
        and mechanism in _PASSWORD_MECHANISMS
        and not (settings.kafka_sasl_username and settings.kafka_sasl_password)
    ):
        problems.append(
            f"KAFKA_SASL_MECHANISM={mechanism} needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD"
        )
    if mechanism == "OAUTHBEARER" and settings.kafka_sasl_oauth_token_file is None:
        problems.append("KAFKA_SASL_MECHANISM=OAUTHBEARER needs KAFKA_SASL_OAUTH_TOKEN_FILE")
    if mechanism == "AWS_MSK_IAM" and not settings.aws_region:
        problems.append("KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs AWS_REGION")
    tls_files = {
        "KAFKA_SSL_CAFILE": settings.kafka_ssl_cafile,
        "KAFKA_SSL_CERTFILE": settings.kafka_ssl_certfile,
        "KAFKA_SSL_KEYFILE": settings.kafka_ssl_keyfile,
    }
    files = {**tls_files, "KAFKA_SASL_OAUTH_TOKEN_FILE": settings.kafka_sasl_oauth_token_file}
    if protocol not in ("SSL", "SASL_SSL"):
        named = [name for name, path in tls_files.items() if path is not None]
        if named or settings.kafka_ssl_key_password is not None:
            problems.append(
                f"{', '.join(named) or 'KAFKA_SSL_KEY_PASSWORD'} set but {said} does not use "
                "TLS (SSL or SASL_SSL do)"
            )
    if settings.kafka_ssl_keyfile is not None and settings.kafka_ssl_certfile is None:
        problems.append("KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE (the key's certificate)")
    for name, path in files.items():
        if path is not None and not path.is_file():
            problems.append(f"{name}: no such file: {path}")
    return problems


def runtime_keys() -> frozenset[str]:
    """The settings marked RUNTIME."""
    return frozenset(
        name
        for name, field in Settings.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("runtime")
    )


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise ConfigurationError with one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except SettingsError as exc:
        # raised before validation, for a complex value (a list or dict) that is not JSON
        field = re.search(r'field "(\w+)"', str(exc))
        name = field.group(1).upper() if field else "settings"
        raise ConfigurationError(f"invalid settings: {name}: not valid JSON") from None
    except ValidationError as exc:
        raise ConfigurationError("invalid settings: " + describe(exc, upper=True)) from None
