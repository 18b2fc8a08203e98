"""Configuration from the environment (pydantic-settings).

Every field reads the environment variable of the same name in upper case, e.g.
``kafka_bootstrap_servers`` <- ``KAFKA_BOOTSTRAP_SERVERS``. Invalid values fail at start-up
with one message naming the variable (see ``load_settings``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from streams.errors import ConfigurationError
from streams.limits import LimitsConfig

ProviderName = Literal["openai", "anthropic", "gemini", "deepseek", "ollama"]
PROVIDER_NAMES: tuple[ProviderName, ...] = ("openai", "anthropic", "gemini", "deepseek", "ollama")
# The environment variable holding each provider's key (Ollama needs one only on ollama.com).
KEY_VARIABLES: dict[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GOOGLE_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "ollama": "OLLAMA_API_KEY",
}


class ModelPrice(BaseModel):
    """List price in USD per million tokens."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    output: float = Field(ge=0)

    def cost_usd(self, *, input_tokens: int, cached_input_tokens: int, output_tokens: int) -> float:
        uncached = max(input_tokens - cached_input_tokens, 0)
        total = (
            uncached * self.input
            + cached_input_tokens * self.cached_input
            + output_tokens * self.output
        )
        return round(total / 1_000_000, 10)


# Dated defaults (shared reference providers.md §7, 2026-11-24); override with LLM_PRICES.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-5.4-mini": ModelPrice(input=0.75, cached_input=0.075, output=4.50),
    "gpt-5.4-nano": ModelPrice(input=0.20, cached_input=0.02, output=1.25),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60),
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60),
    "claude-haiku-4-5": ModelPrice(input=1.00, cached_input=0.10, output=5.00),
    "claude-sonnet-4-6": ModelPrice(input=3.00, cached_input=0.30, output=15.00),
    "gemini-2.5-flash-lite": ModelPrice(input=0.10, cached_input=0.10, output=0.40),
    "gemini-3.5-flash": ModelPrice(input=1.50, cached_input=1.50, output=9.00),
    "deepseek-v4-flash": ModelPrice(input=0.14, cached_input=0.0028, output=0.28),
    "deepseek-v4-pro": ModelPrice(input=0.435, cached_input=0.003625, output=0.87),
}

DEFAULT_MODELS: dict[str, str] = {
    "openai": "gpt-5.4-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash-lite",
    "deepseek": "deepseek-v4-flash",
    "ollama": "llama3.2",
}

DEFAULT_BASE_URLS: dict[str, str] = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "gemini": "https://generativelanguage.googleapis.com",
    "deepseek": "https://api.deepseek.com",
    "ollama": "http://localhost:11434",
}


@dataclass(frozen=True, kw_only=True)
class ProviderConfig:
    """What one adapter needs, gathered from the flat environment variables."""

    name: str
    base_url: str
    api_key: SecretStr | None
    model: str
    connect_timeout_s: float
    max_connections: int


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", validate_default=True, frozen=True
    )

    # Kafka
    kafka_bootstrap_servers: str = "localhost:9092"
    llm_app_id: str = Field(default="llm-enricher", min_length=1)
    llm_topic_raw: str = "jobs.raw"
    llm_topic_enriched: str = "jobs.enriched"
    llm_topic_dead_letter: str = "jobs.dead-letter"
    llm_topic_calls: str = "llm.calls"
    llm_topic_control: str = "llm.control"
    llm_topic_stats_resets: str = "llm.stats-resets"
    llm_topic_replays: str = "llm.replays"
    llm_topic_cache: str = "llm.cache"
    llm_topic_partitions: int = Field(default=4, ge=1, le=1024)
    llm_data_dir: Path = Path(".data/worker")
    # How long a silent (crashed) worker keeps its partitions before the group moves them.
    llm_broker_session_timeout_s: float = Field(default=30.0, ge=6, le=300)
    # How often finished records' offsets are committed: the work a crash makes redo.
    llm_commit_interval_s: float = Field(default=1.0, ge=0.1, le=60)

    # Processing
    llm_worker_concurrency: int = Field(default=64, ge=1, le=4096)
    llm_provider_chain: Annotated[list[ProviderName], NoDecode] = list(PROVIDER_NAMES)
    llm_job_deadline_s: float = Field(default=45.0, gt=0, le=300)
    llm_attempt_timeout_s: float = Field(default=30.0, gt=0, le=300)
    llm_retry_attempts: int = Field(default=2, ge=1, le=10)
    llm_retry_initial_backoff_s: float = Field(default=0.25, ge=0, le=60)
    llm_retry_max_backoff_s: float = Field(default=8.0, ge=0, le=300)
    llm_routing_strategy: Literal["priority", "latency"] = "priority"
    llm_breaker_failures: int = Field(default=10, ge=1, le=1000)
    llm_breaker_failure_ratio: float = Field(default=0.5, gt=0, le=1)
    llm_breaker_window: int = Field(default=50, ge=2, le=10_000)
    llm_breaker_cooldown_s: float = Field(default=30.0, gt=0, le=3600)
    # e.g. {"openai": {"rpm": 500, "tpm": 200000, "concurrency": 32}}
    llm_provider_limits: dict[str, LimitsConfig] = Field(default_factory=dict)
    llm_max_output_tokens: int = Field(default=1024, ge=16, le=65536)
    llm_temperature: float = Field(default=0.2, ge=0, le=2)
    llm_prices: dict[str, ModelPrice] = Field(default_factory=lambda: dict(DEFAULT_PRICES))
    llm_price_version: str = "2026-11-24"
    # Reposts: an identical job (normalised title, company, description, options) reuses
    # the earlier enrichment instead of calling a provider.
    llm_cache_enabled: bool = True
    llm_cache_max_entries: int = Field(default=100_000, ge=1)
    llm_cache_max_age_s: float = Field(default=30 * 24 * 3600, gt=0)

    # Providers: keys switch a provider to its real endpoint; base URLs point at the simulator.
    openai_api_key: SecretStr | None = None
    anthropic_api_key: SecretStr | None = None
    google_api_key: SecretStr | None = None
    deepseek_api_key: SecretStr | None = None
    ollama_api_key: SecretStr | None = None
    openai_base_url: HttpUrl = HttpUrl(DEFAULT_BASE_URLS["openai"])
    anthropic_base_url: HttpUrl = HttpUrl(DEFAULT_BASE_URLS["anthropic"])
    gemini_base_url: HttpUrl = HttpUrl(DEFAULT_BASE_URLS["gemini"])
    deepseek_base_url: HttpUrl = HttpUrl(DEFAULT_BASE_URLS["deepseek"])
    ollama_base_url: HttpUrl = HttpUrl(DEFAULT_BASE_URLS["ollama"])
    openai_model: str = DEFAULT_MODELS["openai"]
    anthropic_model: str = DEFAULT_MODELS["anthropic"]
    gemini_model: str = DEFAULT_MODELS["gemini"]
    deepseek_model: str = DEFAULT_MODELS["deepseek"]
    ollama_model: str = DEFAULT_MODELS["ollama"]
    llm_connect_timeout_s: float = Field(default=5.0, gt=0, le=60)
    llm_max_connections_per_provider: int = Field(default=256, ge=1, le=10000)

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

    @field_validator("llm_service_log_level", mode="before")
    @classmethod
    def _lower_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value

    @field_validator("llm_prices", mode="after")
    @classmethod
    def _merge_prices(cls, value: dict[str, ModelPrice]) -> dict[str, ModelPrice]:
        # An override names only the models it changes; the rest keep their defaults.
        return {**DEFAULT_PRICES, **value}

    @model_validator(mode="after")
    def _check_chain(self) -> Settings:
        if not self.llm_provider_chain:
            raise ValueError("LLM_PROVIDER_CHAIN names no provider")
        if len(set(self.llm_provider_chain)) != len(self.llm_provider_chain):
            raise ValueError("LLM_PROVIDER_CHAIN names a provider twice")
        if self.llm_attempt_timeout_s > self.llm_job_deadline_s:
            raise ValueError("LLM_ATTEMPT_TIMEOUT_S must not exceed LLM_JOB_DEADLINE_S")
        return self

    def limits(self, name: str) -> LimitsConfig:
        return self.llm_provider_limits.get(name, LimitsConfig())

    def provider(self, name: str) -> ProviderConfig:
        api_key: SecretStr | None = getattr(self, KEY_VARIABLES[name].lower())
        return ProviderConfig(
            name=name,
            base_url=str(getattr(self, f"{name}_base_url")).rstrip("/"),
            api_key=api_key,
            model=getattr(self, f"{name}_model"),
            connect_timeout_s=self.llm_connect_timeout_s,
            max_connections=self.llm_max_connections_per_provider,
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
        problems = []
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]).upper() or "settings"
            problems.append(f"{where}: {error['msg']}")
        raise ConfigurationError("invalid settings: " + "; ".join(problems)) from None


def isolated_topics_env(prefix: str) -> dict[str, str]:
    """Environment naming every topic ``<prefix>.<role>`` (e.g. ``t1.raw``): separate runs
    (tests, benchmarks) on one broker then share nothing, whatever topics get added."""
    return {
        name.upper(): f"{prefix}.{name.removeprefix('llm_topic_').replace('_', '-')}"
        for name, field in Settings.model_fields.items()
        if name.startswith("llm_topic_") and field.annotation is str
    }
