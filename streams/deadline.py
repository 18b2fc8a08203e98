"""A job's time budget, as one value from the moment its record is taken to its last byte.

The deadline is created once (so time a record waits in the buffer or behind paused intake
counts) and passed as ``deadline=`` through the router, the gate and the provider call. It is
enforced at the bottom, around each wait and each HTTP call, and running out is a
``DeadlineExceeded``, never a ``None`` or a flag. One clock, injectable: tests pass a fake one
and check exact backoff sequences without waiting.

An attempt gets the job's deadline capped by the per-attempt timeout (``capped``): when the
cap fires the attempt timed out (the provider's fault, worth a retry); when the job's own
deadline fires the job is out of time.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from streams.errors import DeadlineExceeded
from streams.models import Attempt

__all__ = ["MIN_ATTEMPT_S", "Clock", "Deadline"]

Clock = Callable[[], float]

# An attempt with less time than this left is not started: it could not finish.
MIN_ATTEMPT_S = 0.05


@dataclass(frozen=True, kw_only=True)
class Deadline:
    at: float  # on ``clock``
    clock: Clock = time.monotonic
    budget_s: float  # what the job was given, for messages
    job: Deadline | None = None  # set on a per-attempt cap: the job's own deadline

    @classmethod
    def after(
        cls, seconds: float, *, clock: Clock = time.monotonic, start: float | None = None
    ) -> Deadline:
        """A budget of ``seconds`` from ``start`` (default: now)."""
        begun = clock() if start is None else start
        return cls(at=begun + seconds, clock=clock, budget_s=seconds)

    def left(self) -> float:
        return max(0.0, self.at - self.clock())

    def allows(self, seconds: float = 0.0) -> bool:
        """Whether ``seconds`` can pass and still leave time for an attempt."""
        return self.at - self.clock() - seconds >= MIN_ATTEMPT_S

    def capped(self, seconds: float) -> Deadline:
        """This deadline, or ``seconds`` from now if that comes first."""
        now = self.clock()
        if now + seconds >= self.at:
            return self
        return Deadline(at=now + seconds, clock=self.clock, budget_s=seconds, job=self)

    def exceeded(
        self,
        detail: str,
        *,
        attempts: Sequence[Attempt] = (),
        error: type[DeadlineExceeded] = DeadlineExceeded,
    ) -> DeadlineExceeded:
        job = self.job or self
        return error(f"deadline of {job.budget_s:g}s exceeded; {detail}", attempts=attempts)

    def enforced(self, doing: str) -> _Enforced:
        """Bound an ``async with`` block by this deadline. The job's deadline running out
        raises DeadlineExceeded; a per-attempt cap running out raises TimeoutError."""
        return _Enforced(self, doing)


class _Enforced:
    """``asyncio.timeout`` that names what ran out (a class, not a generator: it wraps every
    provider call, and a generator-based context manager costs several times as much)."""

    __slots__ = ("_deadline", "_doing", "_timeout")

    def __init__(self, deadline: Deadline, doing: str) -> None:
        self._deadline, self._doing = deadline, doing
        self._timeout = asyncio.timeout(deadline.left())

    async def __aenter__(self) -> None:
        await self._timeout.__aenter__()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            await self._timeout.__aexit__(kind, exc, tb)
        except TimeoutError:
            if self._deadline.job is not None:
                raise
            raise self._deadline.exceeded(f"while {self._doing}") from None
