"""What a running worker can change: exactly the settings its routing and its shadow
candidates are made of."""

from __future__ import annotations

from typing import Any

import pytest

from streams.config.runtime import RUNTIME_KEYS, RuntimeConfig
from streams.config.settings import Settings, load_settings
from streams.errors import ConfigurationError

# A valid value other than the default for every runtime setting.
CHANGES: dict[str, Any] = {
    "llm_provider_chain": "deepseek,openai",
    "llm_routing_strategy": "latency",
    "llm_job_deadline_s": 40,
    "llm_attempt_timeout_s": 20,
    "llm_retry_attempts": 3,
    "llm_retry_initial_backoff_s": 0.5,
    "llm_retry_max_backoff_s": 4,
    "llm_max_output_tokens": 512,
    "llm_temperature": 0.7,
    "llm_breaker_failures": 3,
    "llm_breaker_failure_ratio": 0.9,
    "llm_breaker_window": 20,
    "llm_breaker_cooldown_s": 5,
    "llm_provider_limits": {"openai": {"rpm": 100}},
    "llm_budgets": {"total": 5},
    "llm_tenants": {"bulk": {"daily_budget_usd": 5, "weight": 2}},
    "llm_repair": False,
    "llm_repair_max_tokens": 2048,
    "llm_shadow": [{"provider": "openai", "model": "gpt-5.4-nano", "sample": 0.1}],
}


def test_every_runtime_setting_is_tried_here() -> None:
    assert set(CHANGES) == RUNTIME_KEYS


@pytest.mark.parametrize("key", sorted(CHANGES))
def test_each_runtime_setting_changes_the_routing_or_the_candidates(key: str) -> None:
    config = RuntimeConfig(Settings())
    patched = config.patched({key.upper(): CHANGES[key]})
    assert (patched.routing(), patched.shadow()) != (config.routing(), config.shadow())
    assert patched.view()[key] != config.view()[key]


@pytest.mark.parametrize("key", ["kafka_bootstrap_servers", "llm_worker_concurrency", "llm_lane"])
def test_the_rest_need_a_restart(key: str) -> None:
    with pytest.raises(ConfigurationError, match="cannot change at run time"):
        RuntimeConfig(Settings()).patched({key: "x"})


def test_the_view_never_shows_a_secret() -> None:
    config = RuntimeConfig(Settings(openai_api_key="sk-secret-value"))
    assert "sk-secret-value" not in str(config.view())


def test_a_patch_replaces_an_object_the_environment_set_rather_than_merging_into_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_TENANTS", '{"bulk": {"daily_budget_usd": 1}}')
    monkeypatch.setenv("LLM_BUDGETS", '{"openai": 5, "total": 9}')
    patched = RuntimeConfig(load_settings()).patched(
        {"LLM_TENANTS": {"bulk": {}}, "LLM_BUDGETS": {"total": 9}}
    )
    assert patched.routing().tenant("bulk").daily_budget_usd is None
    assert patched.routing().budgets == {"total": 9}
