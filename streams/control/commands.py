"""Commands for the compacted ``llm.control`` topic, for those who publish them (the CLI, the
web view): validating a config patch, the compaction key, publishing. Light on purpose:
publishing one command loads no router, adapter or Faust.

A command (enable or disable a provider, a config patch, a stats reset) is published once and
applied by every worker in topic order (``follower``). Config patches are validated exactly
like start-up settings, by the publisher and again by every worker: an invalid patch changes
nothing.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from streams.config.settings import Settings
from streams.errors import ConfigurationError, describe
from streams.kafka.admin import ensure_topic
from streams.kafka.clients import producer
from streams.models import ControlCommand

# Settings a running worker can take on; everything else needs a restart.
RUNTIME_KEYS = frozenset(
    {
        "llm_provider_chain",
        "llm_routing_strategy",
        "llm_job_deadline_s",
        "llm_attempt_timeout_s",
        "llm_retry_attempts",
        "llm_retry_initial_backoff_s",
        "llm_retry_max_backoff_s",
        "llm_max_output_tokens",
        "llm_temperature",
        "llm_breaker_failures",
        "llm_breaker_failure_ratio",
        "llm_breaker_window",
        "llm_breaker_cooldown_s",
        "llm_provider_limits",
        "llm_budgets",
    }
)


def apply_patch(settings: Settings, patch: dict[str, Any]) -> Settings:
    """``settings`` with ``patch`` applied, validated like start-up settings.

    Keys are setting names in any case (``LLM_JOB_DEADLINE_S``); raises ConfigurationError
    naming every key or value that cannot be used."""
    problems = []
    normalised = {}
    for key, value in patch.items():
        name = key.lower()
        if name not in Settings.model_fields:
            problems.append(f"{key.upper()}: not a setting")
        elif name not in RUNTIME_KEYS:
            problems.append(f"{key.upper()}: cannot change at run time (restart instead)")
        else:
            normalised[name] = value
    if problems:
        raise ConfigurationError("refused: " + "; ".join(problems))
    try:
        return Settings.model_validate(settings.model_dump() | normalised)
    except ValidationError as exc:
        raise ConfigurationError("refused: " + describe(exc, upper=True)) from None


def command_key(command: ControlCommand) -> str:
    """The compaction key: the latest command per provider, per config key set, per reset."""
    if command.action in ("enable", "disable"):
        return f"provider:{command.provider}"
    if command.action == "set_config":
        return "config:" + ",".join(sorted(k.lower() for k in command.config or {}))
    return "stats"


async def publish(settings: Settings, command: ControlCommand) -> None:
    """Send one command (CLI and web view). Validates a config patch first."""
    if command.action == "set_config":
        apply_patch(settings, command.config or {})
    topic = settings.llm_topic_control
    await ensure_topic(settings.kafka_bootstrap_servers, topic, partitions=1, compacted=True)
    async with producer(settings.kafka_bootstrap_servers) as client:
        await client.send_and_wait(
            topic, command.model_dump_json().encode(), key=command_key(command).encode()
        )


def parse_assignments(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``KEY=VALUE`` pairs from the command line; values are JSON where they parse as JSON
    (numbers, objects), else text (``openai,gemini``)."""
    patch: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigurationError(f"expected KEY=VALUE, got {pair!r}")
        try:
            patch[key] = json.loads(value)
        except json.JSONDecodeError:
            patch[key] = value
    return patch
