"""Daily budgets on the real broker, held from the group's stats: a spent provider budget
makes jobs fall back; with every budget spent intake pauses and nothing is dead-lettered;
a raised budget lets the waiting jobs through."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.settings import Settings
from streams.models import ControlCommand
from streams.web.health import consumer_lag
from tests.eventually import eventually_async
from tests.kafka_helpers import (
    commit_rounds,
    consume,
    end_offsets,
    job_record,
    produce,
    send_command,
)

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
    app = await create_app(settings)
    router = app.router
    async with app.running(), httpx.AsyncClient() as web:
        await produce(bootstrap, raw, [job_record("first")])
        (first,) = await consume(bootstrap, enriched_topic, count=1)
        assert json.loads(first.value)["provider"] == "openai", "nothing spent yet"

        async def openai_over_budget() -> bool:
            return router.status().providers["openai"].budget.over_budget

        await eventually_async(openai_over_budget)  # once the first call's cost is in the stats
        await produce(bootstrap, raw, [job_record(f"fallback{n}") for n in range(4)])
        by_job = _providers(await consume(bootstrap, enriched_topic, count=5))
        assert by_job == {"first": "openai"} | {f"fallback{n}": "deepseek" for n in range(4)}

        await _set_budgets(settings, {"openai": TINY_USD, "total": TINY_USD})

        async def intake_paused() -> bool:
            return bool((await web.get(status_url)).json()["intake_paused"])

        await eventually_async(intake_paused)
        status = (await web.get(status_url)).json()
        assert status["budget"]["daily_usd"] == TINY_USD
        assert status["budget"]["spent_today_usd"] > TINY_USD
        assert status["providers"]["deepseek"]["budget"]["over_budget"]
        metrics = (await web.get(status_url.replace("/status", "/metrics"))).text
        assert 'llm_provider_over_budget{provider="deepseek"} 1.0' in metrics

        calls_before = sum(sim.requests().values())
        await produce(bootstrap, raw, [job_record(f"waiting{n}") for n in range(3)])

        async def taken() -> bool:  # the worker has read them: it could call now
            lag = await consumer_lag(app.faust, raw)
            return bool(lag) and not any(lag.values())

        await eventually_async(taken)
        await commit_rounds(app, 2)
        assert sum(sim.requests().values()) == calls_before, "no call while over budget"
        assert sum((await end_offsets(bootstrap, enriched_topic)).values()) == 5
        assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0

        await _set_budgets(settings, {"total": 100.0})
        by_job = _providers(await consume(bootstrap, enriched_topic, count=8))
    assert {f"waiting{n}" for n in range(3)} <= set(by_job)
    assert len(by_job) == 8
    assert sum((await end_offsets(bootstrap, settings.llm_topic_dead_letter)).values()) == 0


async def test_calls_cut_off_by_the_deadline_are_billed_as_estimated_spend(
    settings: Settings, sim: SimulatorThread
) -> None:
    """The vendor bills a call it was processing when the job's deadline cut it off: its
    ledger entry carries the prompt's tokens and an estimated cost, the figures show it as
    estimated spend, and the budget counts it."""
    bootstrap = settings.kafka_bootstrap_servers
    settings = settings.model_copy(
        update={
            "llm_provider_chain": ["openai"],
            "llm_job_deadline_s": 5.0,
            "llm_attempt_timeout_s": 5.0,
            "llm_budgets": {"openai": TINY_USD},
        }
    )
    sim.set_faults("openai", latency_ms=8000)
    app = await create_app(settings)
    base = f"http://127.0.0.1:{settings.llm_service_port}"
    async with app.running(), httpx.AsyncClient() as web:
        await produce(bootstrap, settings.llm_topic_raw, [job_record(f"cut{n}") for n in range(2)])
        letters = await consume(bootstrap, settings.llm_topic_dead_letter, count=2, timeout_s=30)
        calls = await consume(bootstrap, settings.llm_topic_calls, count=2)

        async def counted() -> bool:
            return app.router.status().providers["openai"].budget.over_budget

        await eventually_async(counted, timeout_s=30)  # the budget counts the estimate
        totals = (await web.get(f"{base}/statistics")).json()["totals"]["openai"]
    assert {json.loads(r.value)["error"]["type"] for r in letters} == {"DeadlineExceeded"}
    for record in calls:
        call = json.loads(record.value)
        assert call["outcome"] == "deadline_exceeded"
        assert call["usage_estimated"] is True
        assert call["usage"]["input_tokens"] > 100, "the prompt as sent"
        assert call["usage"]["output_tokens"] == settings.llm_max_output_tokens
        assert call["usage"]["cost_usd"] > 0
    assert totals["estimated_calls"] == 2
    assert totals["estimated_cost_usd"] == pytest.approx(totals["cost_usd"])
    assert totals["estimated_cost_usd"] > 0
