"""Daily budgets on the real broker, held from the group's stats: a spent provider budget
makes jobs fall back; with every budget spent intake pauses and nothing is dead-lettered;
a raised budget lets the waiting jobs through."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.settings import Settings
from streams.models import ControlCommand
from tests.kafka_helpers import consume, end_offsets, job_record, produce, send_command, wait_for

pytestmark = pytest.mark.slow

TINY_USD = 1e-9  # spent by the first call


async def _set_budgets(settings: Settings, budgets: dict[str, float]) -> None:
    command = ControlCommand(action="set_config", config={"LLM_BUDGETS": budgets})
    await send_command(settings, command)


def _providers(records: list[Any]) -> dict[str, str]:
    return {json.loads(r.value)["job_id"]: json.loads(r.value)["provider"] for r in records}


async def test_budgets_fall_back_then_pause_intake_then_resume(
    settings: Settings, sim: SimulatorThread
) -> None:
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    enriched_topic = settings.llm_topic_enriched
    status_url = f"http://127.0.0.1:{settings.llm_service_port}/status"
    settings = settings.model_copy(update={"llm_budgets": {"openai": TINY_USD}})
    app = create_app(settings)
    router = app.router
    async with app.running(), httpx.AsyncClient() as web:
        await produce(bootstrap, raw, [job_record("first")])
        (first,) = await consume(bootstrap, enriched_topic, count=1)
        assert json.loads(first.value)["provider"] == "openai", "nothing spent yet"

        async def openai_over_budget() -> bool:
            return router.status().providers["openai"].budget.over_budget

        await wait_for(openai_over_budget)  # once the first call's cost is in the stats
        await produce(bootstrap, raw, [job_record(f"fallback{n}") for n in range(4)])
        by_job = _providers(await consume(bootstrap, enriched_topic, count=5))
        assert by_job == {"first": "openai"} | {f"fallback{n}": "deepseek" for n in range(4)}

        await _set_budgets(settings, {"openai": TINY_USD, "total": TINY_USD})

        async def intake_paused() -> bool:
            return bool((await web.get(status_url)).json()["intake_paused"])

        await wait_for(intake_paused)
        status = (await web.get(status_url)).json()
        assert status["budget"]["daily_usd"] == TINY_USD
        assert status["budget"]["spent_today_usd"] > TINY_USD
        assert status["providers"]["deepseek"]["budget"]["over_budget"]
        metrics = (await web.get(status_url.replace("/status", "/metrics"))).text
        assert 'llm_provider_over_budget{provider="deepseek"} 1.0' in metrics

        calls_before = sum(sim.requests().values())
        await produce(bootstrap, raw, [job_record(f"waiting{n}") for n in range(3)])
        await asyncio.sleep(3)
        assert sum(sim.requests().values()) == calls_before, "no call while over budget"
        assert sum((await end_offsets(bootstrap, enriched_topic)).values()) == 5
        assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0

        await _set_budgets(settings, {"total": 100.0})
        by_job = _providers(await consume(bootstrap, enriched_topic, count=8))
    assert {f"waiting{n}" for n in range(3)} <= set(by_job)
    assert len(by_job) == 8
    assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0
