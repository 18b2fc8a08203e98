"""The router's state as the rest of the service may see it: frozen values made on request.

Web, metrics, health and the batch lane read these; nothing outside ``routing`` holds a gate,
so a change to how a gate works cannot reach past this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from streams.routing.budget import Budget

__all__ = [
    "BudgetStatus",
    "CircuitStatus",
    "GateStatus",
    "LimitsStatus",
    "ProviderStatus",
    "RoutingStatus",
]

CircuitState = Literal["closed", "open", "half_open"]


class _Value(BaseModel):
    # Frozen, and strict about fields: the web view serves these as they are.
    model_config = ConfigDict(frozen=True, extra="forbid")


class CircuitStatus(_Value):
    state: CircuitState
    consecutive_failures: int
    recent_failure_ratio: float


class LimitsStatus(_Value):
    rpm: int | None
    tpm: int | None
    concurrency: int | None


class BudgetStatus(_Value):
    daily_usd: float | None = Field(description="USD per UTC day for the group (LLM_BUDGETS)")
    spent_today_usd: float = Field(description="by the whole group, since 00:00 UTC")
    over_budget: bool = Field(description="over its own budget or the service's: skipped")


class GateStatus(_Value):
    """A provider's gate: what decides whether the router may call it now."""

    enabled: bool
    circuit: CircuitStatus
    rate_limited_for_s: float
    latency_ms_avg: float | None
    in_flight: int
    limits: LimitsStatus = Field(description="the group's, as configured")
    limits_here: LimitsStatus = Field(
        description="this worker's share, from the partitions it holds"
    )
    budget: BudgetStatus


class ProviderStatus(GateStatus):
    name: str
    model: str
    in_chain: bool

    @property
    def usable(self) -> bool:
        """Switched on and within budget (its circuit may still be open for a while)."""
        return self.enabled and not self.budget.over_budget

    def gate(self) -> GateStatus:
        """The gate's own figures (without name, model and chain membership)."""
        return GateStatus.model_validate(self.model_dump(exclude={"name", "model", "in_chain"}))


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
