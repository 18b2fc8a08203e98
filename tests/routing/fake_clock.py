"""A clock for the routing tests, and a router that runs on it."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from streams.config.settings import Settings
from streams.providers.base import Provider
from streams.routing.router import Router


class FakeClock:
    """Time that passes only when someone sleeps: exact, instant backoff checks."""

    def __init__(self, *, real_pause_s: float = 0.0) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.real_pause_s = real_pause_s  # lets other tasks (and the simulator) move

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(self.real_pause_s)


def router_for(
    settings: Settings, providers: dict[str, Provider], clock: FakeClock, **changes: Any
) -> Router:
    """A router from ``settings`` with ``changes`` (setting names), on ``clock``."""
    return Router(
        settings.model_copy(update=changes).routing(),
        providers,
        clock=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )
