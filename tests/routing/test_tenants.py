"""Tenants in the router and the settings: a tenant's providers bound where its jobs go, its
budget is spent once the group's spend for it reaches it, and LLM_TENANTS is checked like the
other runtime settings."""

from __future__ import annotations

import pytest

from devstack.harness import SimulatorThread
from streams.config.runtime import RuntimeConfig
from streams.config.settings import Settings
from streams.config.slices import TenantPolicy
from streams.errors import ConfigurationError, EnrichmentFailed
from streams.models import RawJob
from streams.providers.base import Provider
from tests.routing.fake_clock import FakeClock, router_for
from tests.routing.helpers import route


def _job(tenant: str) -> RawJob:
    return RawJob(job_id=f"{tenant}-1", title="Engineer", description="Go.", tenant=tenant)


async def test_a_tenant_s_jobs_go_only_to_its_providers(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    router = router_for(
        base_settings,
        providers,
        FakeClock(),
        llm_tenants={
            "cheap": TenantPolicy(providers=("deepseek",)),
            "none": TenantPolicy(providers=("gemini",)),
        },
    )
    assert router.order(None, tenant="cheap") == ["deepseek"]
    assert router.order(None, tenant="anyone") == ["openai", "deepseek"]
    assert (await route(router, _job("cheap"))).provider == "deepseek"
    assert sim.requests().get("openai", 0) == 0
    with pytest.raises(EnrichmentFailed, match="tenant 'none' may use no provider"):
        await route(router, _job("none"))


def test_a_tenant_is_over_its_budget_once_its_spend_reaches_it(
    base_settings: Settings, providers: dict[str, Provider]
) -> None:
    router = router_for(
        base_settings,
        providers,
        FakeClock(),
        llm_tenants={"bulk": TenantPolicy(daily_budget_usd=2)},
    )
    router.set_tenant_spent_today({"bulk": 1.99, "fresh": 100.0})
    assert not router.tenant_over_budget("bulk")
    assert not router.tenant_over_budget("fresh"), "no budget of its own"
    router.set_tenant_spent_today({"bulk": 2.0})
    assert router.tenant_over_budget("bulk")
    assert router.tenant("bulk") == TenantPolicy(daily_budget_usd=2)
    assert router.tenant("unknown") == TenantPolicy()


@pytest.mark.parametrize(
    ("tenants", "said"),
    [
        ({"Bad Name": {}}, "LLM_TENANTS"),
        ({"bulk": {"weight": 0}}, "greater than 0"),
        ({"bulk": {"providers": ["nobody"]}}, "LLM_TENANTS"),
        ({"bulk": {"daily_budget_usd": -1}}, "greater than or equal to 0"),
        ({"bulk": {"budget": 3}}, "Extra inputs are not permitted"),
    ],
)
def test_a_bad_tenant_policy_is_refused_at_run_time_with_what_is_wrong(
    tenants: dict[str, object], said: str
) -> None:
    runtime = RuntimeConfig(Settings())
    with pytest.raises(ConfigurationError, match=said):
        runtime.patched({"LLM_TENANTS": tenants})


def test_a_tenant_policy_applies_at_run_time() -> None:
    runtime = RuntimeConfig(Settings()).patched(
        {"LLM_TENANTS": {"bulk": {"daily_budget_usd": 5, "weight": 2, "lane": "batch"}}}
    )
    assert runtime.routing().tenant("bulk") == TenantPolicy(
        daily_budget_usd=5, weight=2, lane="batch"
    )
