"""Applying the control topic on every worker: each command, in topic order, to the router.

A restarted worker replays the whole topic before it takes any job (``ready``), so all
workers converge on the same state."""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError

from streams.config.runtime import RuntimeConfig
from streams.config.slices import KafkaCluster
from streams.errors import ConfigurationError
from streams.kafka.readers import WholeTopic
from streams.models import ControlCommand
from streams.routing.router import Router
from streams.shadow.runner import Shadows

__all__ = ["ControlFollower", "ControlState"]

log = logging.getLogger(__name__)


class ControlState:
    """The fold of every command so far, applied to the router."""

    def __init__(
        self, config: RuntimeConfig, router: Router, *, shadows: Shadows | None = None
    ) -> None:
        self.config = config
        self.router = router
        self.shadows = shadows

    def apply(self, command: ControlCommand) -> None:
        if command.action in ("enable", "disable"):
            assert command.provider is not None  # the model checks it
            self.router.set_enabled(command.provider, command.action == "enable")
            log.info("control: %s %s", command.action, command.provider)
        elif command.action == "set_config":
            try:
                self.config = self.config.patched(command.config or {})
            except ConfigurationError as exc:
                log.warning("control: config patch %s %s", command.config, exc)
                return
            self.router.reconfigure(self.config.routing())
            if self.shadows is not None:
                self.shadows.reconfigure(self.config.shadow(), self.config.routing())
            log.info("control: config patched: %s", sorted(command.config or {}))
        else:
            # The reset itself travels on the stats-resets topic, co-partitioned with the
            # stats; this command is the record of it (and replaying it resets nothing).
            log.info("control: stats were reset at %s", command.at.isoformat())


class ControlFollower(WholeTopic):
    """Applies every command on the control topic, on every worker, in topic order."""

    def __init__(self, state: ControlState, *, cluster: KafkaCluster, topic: str) -> None:
        super().__init__(cluster=cluster, topic=topic)
        self.state = state

    def apply(self, record: Any) -> None:
        try:
            command = ControlCommand.model_validate_json(record.value or b"")
        except ValidationError as exc:
            log.warning("control: ignoring an invalid command: %s", exc.errors()[0]["msg"])
            return
        self.state.apply(command)
