"""Commands for the compacted ``llm.control`` topic, for those who publish them (the CLI, the
web view): validating a config patch, the compaction key, publishing. Light on purpose:
publishing one command loads no router, adapter or Faust.

A command (enable or disable a provider, a config patch, a stats reset) is published once and
applied by every worker in topic order (``follower``). Config patches are validated exactly
like start-up settings (``config.runtime``), by the publisher and again by every worker: an
invalid patch changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from streams.config.runtime import RuntimeConfig
from streams.config.slices import KafkaCluster
from streams.errors import ConfigurationError
from streams.kafka.admin import ensure_topic
from streams.kafka.clients import producer
from streams.models import ControlCommand

__all__ = ["parse_assignments", "publish"]


def command_key(command: ControlCommand) -> str:
    """The compaction key: the latest command per provider, per config key set, per reset."""
    if command.action in ("enable", "disable"):
        return f"provider:{command.provider}"
    if command.action == "set_config":
        return "config:" + ",".join(sorted(k.lower() for k in command.config or {}))
    return "stats"


async def publish(
    command: ControlCommand, *, config: RuntimeConfig, cluster: KafkaCluster, topic: str
) -> None:
    """Send one command (CLI and web view). Validates a config patch against ``config``
    first."""
    if command.action == "set_config":
        config.patched(command.config or {})
    await ensure_topic(cluster, topic, partitions=1, compacted=True)
    async with producer(cluster) as client:
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
