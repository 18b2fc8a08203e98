"""The router's state as the rest of the service may see it: frozen values made on request.

Web, metrics, health and the batch lane read these; nothing outside ``routing`` holds a gate,
so a change to how a gate works cannot reach past this package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from streams.routing.budget import Budget

__all__ = ["BudgetStatus", "CircuitStatus", "ProviderStatus", "RoutingStatus"]

CircuitState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, kw_only=True)
class CircuitStatus:
    state: CircuitState
    consecutive_failures: int
    recent_failure_ratio: float


@dataclass(frozen=True, kw_only=True)
class BudgetStatus:
    daily_usd: float | None
    spent_today_usd: float
    over_budget: bool  # over its own budget or the service's: skipped


@dataclass(frozen=True, kw_only=True)
class ProviderStatus:
    name: str
    model: str
    in_chain: bool
    enabled: bool
    circuit: CircuitStatus
    rate_limited_for_s: float
    latency_ms_avg: float | None
    in_flight: int
    limits: Mapping[str, int | None]  # the group's, as configured
    limits_here: Mapping[str, int | None]  # this worker's share of them
    budget: BudgetStatus

    @property
    def usable(self) -> bool:
        """Switched on and within budget (its circuit may still be open for a while)."""
        return self.enabled and not self.budget.over_budget

    def gate(self) -> dict[str, Any]:
        """The gate's own figures (without name, model and chain membership)."""
        view = dataclasses.asdict(self)
        for key in ("name", "model", "in_chain"):
            del view[key]
        return view


@dataclass(frozen=True, kw_only=True)
class RoutingStatus:
    chain: tuple[str, ...]
    strategy: str
    intake_paused: bool  # no provider in the chain can take a call now
    total_budget: Budget
    providers: Mapping[str, ProviderStatus]  # every configured provider, chain or not

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self.providers.values())

    def in_chain(self) -> list[ProviderStatus]:
        """The chain's providers, in its order."""
        return [self.providers[name] for name in self.chain]
