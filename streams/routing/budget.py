"""Daily budgets (LLM_BUDGETS): USD per UTC day per provider, and one for the whole service,
held for the consumer group from the spend the stats path sums for every worker
(``observe.spend``).

A provider over its budget is skipped like an open circuit, so jobs fall back; with no
provider under budget, intake pauses until the day turns or a budget is raised, and the jobs
in flight wait within their deadlines (then fail as BudgetExhausted). The spend arrives a
second or two after the calls: a budget is overshot by the calls under way when it is reached.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from streams.vocab import TOTAL_BUDGET

__all__ = ["Budget", "budgets_today"]


@dataclass(frozen=True, kw_only=True)
class Budget:
    daily_usd: float | None = None  # None: no budget
    spent_today_usd: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.daily_usd is not None and self.spent_today_usd >= self.daily_usd


def budgets_today(
    budgets: Mapping[str, float], spent: Mapping[str, float], providers: Iterable[str]
) -> dict[str, Budget]:
    """Each provider's budget and today's spend, and the service's under TOTAL_BUDGET."""
    states = {
        name: Budget(daily_usd=budgets.get(name), spent_today_usd=spent.get(name, 0.0))
        for name in providers
    }
    states[TOTAL_BUDGET] = Budget(
        daily_usd=budgets.get(TOTAL_BUDGET), spent_today_usd=sum(spent.values())
    )
    return states
