"""Settings and adapters pointed at the shared simulator, for the routing tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from devstack.harness import SimulatorThread
from streams.config.settings import Settings, load_settings
from streams.providers.base import Provider
from streams.providers.build import build_providers


@pytest.fixture
def base_settings(sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in sim.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("LLM_PROVIDER_CHAIN", "openai,deepseek")
    return load_settings()


@pytest.fixture
async def providers(base_settings: Settings) -> AsyncIterator[dict[str, Provider]]:
    built = build_providers(base_settings.provider)
    yield built
    for provider in built.values():
        await provider.aclose()
