"""Runtime control over the compacted ``llm.control`` topic.

A command (enable or disable a provider, a config patch, a stats reset) is published once and
applied by every worker in topic order; a restarted worker replays the topic before it takes
any job, so all workers converge on the same state. Config patches are validated exactly like
start-up settings, by the publisher and again by every worker: an invalid patch changes nothing.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from streams.errors import ConfigurationError
from streams.models import ControlCommand
from streams.router import Router
from streams.settings import Settings
from streams.topics import TopicFollower, ensure_topic

log = logging.getLogger(__name__)

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
        reasons = [
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'patch'}: {e['msg']}"
            for e in exc.errors()
        ]
        raise ConfigurationError("refused: " + "; ".join(reasons)) from None


def command_key(command: ControlCommand) -> str:
    """The compaction key: the latest command per provider, per config key set, per reset."""
    if command.action in ("enable", "disable"):
        return f"provider:{command.provider}"
    if command.action == "set_config":
        return "config:" + ",".join(sorted(k.lower() for k in command.config or {}))
    return "stats"


class ControlState:
    """The fold of every command so far, applied to the router."""

    def __init__(self, settings: Settings, router: Router) -> None:
        self.base = settings
        self.settings = settings
        self.router = router

    def apply(self, command: ControlCommand) -> None:
        if command.action in ("enable", "disable"):
            assert command.provider is not None  # the model checks it
            self.router.set_enabled(command.provider, command.action == "enable")
            log.info("control: %s %s", command.action, command.provider)
        elif command.action == "set_config":
            try:
                self.settings = apply_patch(self.settings, command.config or {})
            except ConfigurationError as exc:
                log.warning("control: config patch %s %s", command.config, exc)
                return
            self.router.reconfigure(self.settings)
            log.info("control: config patched: %s", sorted(command.config or {}))
        else:
            # The reset itself travels on the stats-resets topic, co-partitioned with the
            # stats; this command is the record of it (and replaying it resets nothing).
            log.info("control: stats were reset at %s", command.at.isoformat())


class ControlFollower(TopicFollower):
    """Applies every command on the control topic, on every worker, in topic order."""

    def __init__(self, settings: Settings, state: ControlState) -> None:
        super().__init__(
            bootstrap_servers=settings.kafka_bootstrap_servers, topic=settings.llm_topic_control
        )
        self.state = state

    def apply(self, record: Any) -> None:
        try:
            command = ControlCommand.model_validate_json(record.value or b"")
        except ValidationError as exc:
            log.warning("control: ignoring an invalid command: %s", exc.errors()[0]["msg"])
            return
        self.state.apply(command)


async def publish(settings: Settings, command: ControlCommand) -> None:
    """Send one command (CLI and web view). Validates a config patch first."""
    if command.action == "set_config":
        apply_patch(settings, command.config or {})
    topic = settings.llm_topic_control
    await ensure_topic(settings.kafka_bootstrap_servers, topic, partitions=1, compacted=True)
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            topic,
            command.model_dump_json().encode(),
            key=command_key(command).encode(),
        )
    finally:
        await producer.stop()


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
