"""Daily budgets in the router (fake clock, the simulator behind): a provider over its budget
is skipped, no budget left pauses intake and ends a waiting job as BudgetExhausted, and a
raised budget lets it through."""

from __future__ import annotations

import asyncio
import math

import pytest

from devstack.harness import SimulatorThread
from streams.config.settings import Settings
from streams.errors import BudgetExhausted
from streams.models import RawJob
from streams.providers.base import Provider
from streams.routing.budget import Budget, budgets_today
from streams.routing.status import BudgetStatus
from tests.routing.fake_clock import FakeClock, router_for
from tests.routing.helpers import route

JOB = RawJob(job_id="b1", title="Data Engineer", description="Spark and Kafka. Berlin.")


def test_a_budget_is_spent_once_the_spend_reaches_it() -> None:
    budgets = budgets_today(
        {"openai": 1.0, "total": 3.0}, {"openai": 1.0, "deepseek": 1.5}, ["openai", "deepseek"]
    )
    assert budgets["openai"] == Budget(daily_usd=1.0, spent_today_usd=1.0)
    assert budgets["openai"].exhausted
    assert not budgets["deepseek"].exhausted, "no budget of its own"
    assert budgets["total"] == Budget(daily_usd=3.0, spent_today_usd=2.5)
    assert not budgets["total"].exhausted


async def test_a_provider_over_its_budget_is_skipped(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    router = router_for(base_settings, providers, FakeClock(), llm_budgets={"openai": 0.5})
    router.set_spent_today({"openai": 0.5})
    routed = await route(router, JOB)
    assert routed.provider == "deepseek"
    assert sim.requests().get("openai", 0) == 0
    assert router.status().providers["openai"].budget == BudgetStatus(
        daily_usd=0.5, spent_today_usd=0.5, over_budget=True
    )


async def test_no_budget_left_pauses_intake_and_the_job_ends_budget_exhausted(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    clock = FakeClock()
    router = router_for(
        base_settings, providers, clock, llm_budgets={"total": 1.0}, llm_job_deadline_s=5
    )
    router.set_spent_today({"deepseek": 1.2})
    assert math.isinf(router.next_ready_at()), "intake pauses"
    with pytest.raises(BudgetExhausted, match="over its daily budget"):
        await route(router, JOB)
    assert 4.9 <= sum(clock.sleeps) <= 5.0, "it waited out its deadline"
    assert sim.requests() == {}


async def test_a_raised_budget_lets_a_waiting_job_through(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    clock = FakeClock(real_pause_s=0.001)
    spent = base_settings.model_copy(update={"llm_budgets": {"total": 1.0}})
    router = router_for(spent, providers, clock, llm_job_deadline_s=60)
    router.set_spent_today({"openai": 1.0})
    job = asyncio.create_task(route(router, JOB))
    await asyncio.sleep(0.05)
    assert not job.done()
    router.reconfigure(spent.model_copy(update={"llm_budgets": {"total": 2.0}}).routing())
    assert (await job).provider == "openai"
    assert router.next_ready_at() <= clock()
