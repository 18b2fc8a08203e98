"""Waiting in tests for something another process or task does: read a value until it says
what is awaited, or fail with the last one read. One helper for every such wait, instead of a
fixed sleep or a loop of its own in each test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["eventually", "eventually_async"]

T = TypeVar("T")


def eventually(
    read: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    timeout_s: float = 30.0,
    every_s: float = 0.2,
    what: str = "the condition",
) -> T:
    """``read()``'s value once ``until(value)`` is true (by default: once it is truthy),
    read every ``every_s``; AssertionError with the last value after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not until(value := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:g}s; last: {value!r}"[:3000])
        time.sleep(every_s)
    return value


async def eventually_async(
    read: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = bool,
    *,
    timeout_s: float = 30.0,
    every_s: float = 0.2,
    what: str = "the condition",
) -> T:
    """``eventually`` for a coroutine function, on the running event loop."""
    deadline = time.monotonic() + timeout_s
    while not until(value := await read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout_s:g}s; last: {value!r}"[:3000])
        await asyncio.sleep(every_s)
    return value
