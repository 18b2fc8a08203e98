"""A clock for the routing tests."""

from __future__ import annotations

import asyncio


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
