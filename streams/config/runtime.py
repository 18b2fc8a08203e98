"""The settings a running worker can change, as one frozen value: what the control topic
folds (``control``) and the web view shows and validates patches against.

It keeps the whole settings inside, because a patch is validated exactly like start-up
settings (a deadline against the attempt timeout, limits against the partitions), but hands
out only the routing and shadow slices, the masked view and patched copies.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from streams.config.settings import Settings, runtime_keys
from streams.config.slices import RoutingConfig, ShadowCandidate
from streams.errors import ConfigurationError, describe

__all__ = ["RUNTIME_KEYS", "RuntimeConfig"]

RUNTIME_KEYS = runtime_keys()


@dataclass(frozen=True)
class RuntimeConfig:
    _settings: Settings

    def routing(self) -> RoutingConfig:
        return self._settings.routing()

    def shadow(self) -> tuple[ShadowCandidate, ...]:
        return self._settings.shadow()

    def view(self) -> dict[str, Any]:
        """Every setting, secrets written as "**********"."""
        shown: dict[str, Any] = json.loads(self._settings.model_dump_json())
        return shown

    def patched(self, patch: dict[str, Any]) -> RuntimeConfig:
        """This config with ``patch`` applied, validated like start-up settings.

        Keys are setting names in any case (``LLM_JOB_DEADLINE_S``); raises
        ConfigurationError naming every key or value that cannot be used."""
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
            settings = _Patched.model_validate(self._settings.model_dump() | normalised)
        except ValidationError as exc:
            raise ConfigurationError("refused: " + describe(exc, upper=True)) from None
        return RuntimeConfig(settings)


class _Patched(Settings):
    """Settings validated from the values given alone. Settings read the environment too,
    and merge a JSON object found there into the one given key by key: a patch could not
    take away what a variable set (``LLM_TENANTS={"bulk": {}}`` kept bulk's budget)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
