"""A circuit breaker per provider: stop calling a provider that keeps failing, and probe it
again after a cool-down.

closed ──(N consecutive failures, or failure ratio over the window)──► open
open ──(cool-down passed)──► half-open: exactly one probe call is let through
half-open ──probe succeeds──► closed;  ──probe fails──► open again
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from streams.config.slices import BreakerPolicy

__all__ = ["CircuitBreaker"]

log = logging.getLogger(__name__)

State = Literal["closed", "open", "half_open"]


@dataclass(kw_only=True)
class CircuitBreaker:
    provider: str  # named in the log lines that say the circuit opened or closed
    clock: Callable[[], float]
    policy: BreakerPolicy  # replaced when a config patch changes it

    _state: State = "closed"
    _opened_at: float = 0.0
    _probing: bool = False
    _streak: int = 0
    _recent: deque[bool] = field(default_factory=deque)  # True = failure

    @property
    def state(self) -> State:
        if self._state == "open" and self.clock() - self._opened_at >= self.policy.cooldown_s:
            return "half_open"
        return self._state

    def ready_at(self) -> float:
        """When a call may next be let through (now, or the end of the cool-down)."""
        if self._state == "open":
            return self._opened_at + self.policy.cooldown_s
        if self._probing:  # a probe is out: look again shortly
            return self.clock() + min(1.0, self.policy.cooldown_s)
        return self.clock()

    def allow(self) -> bool:
        """Whether a call may go ahead now; in half-open, only the first caller probes."""
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._probing:
            self._state, self._probing = "half_open", True
            return True
        return False

    def record(self, *, failed: bool) -> None:
        if self._state == "half_open":
            self._probing = False
            if failed:
                self._open()
            else:
                self._close()
            return
        self._streak = self._streak + 1 if failed else 0
        self._recent.append(failed)
        policy = self.policy
        while len(self._recent) > policy.window:
            self._recent.popleft()
        ratio_tripped = (
            len(self._recent) >= policy.window
            and sum(self._recent) / len(self._recent) >= policy.failure_ratio
        )
        if self._state == "closed" and (
            self._streak >= policy.consecutive_failures or ratio_tripped
        ):
            self._open()

    def release(self) -> None:
        """A let-through call ended without a verdict (e.g. cancelled): free the probe."""
        self._probing = False

    @property
    def consecutive_failures(self) -> int:
        return self._streak

    @property
    def recent_failure_ratio(self) -> float:
        return sum(self._recent) / len(self._recent) if self._recent else 0.0

    def _open(self) -> None:
        if self._state == "closed":  # a failed probe re-opens it: said once per outage
            log.warning(
                "%s: circuit open after repeated failures; probing again every %gs",
                self.provider,
                self.policy.cooldown_s,
            )
        self._state, self._opened_at, self._streak = "open", self.clock(), 0
        self._recent.clear()

    def _close(self) -> None:
        log.info("%s: circuit closed: the probe call succeeded", self.provider)
        self._state, self._streak = "closed", 0
        self._recent.clear()
