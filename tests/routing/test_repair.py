"""Repair instead of re-buying, against the simulator: an invalid answer asked again once on
the same provider with what was wrong (the conversation continued), a truncated one with
twice the room within the cap; a repair is its own outcome; off, the job falls back."""

from __future__ import annotations

import dataclasses

import pytest

from devstack.harness import SimulatorThread
from streams.config.settings import Settings
from streams.errors import EnrichmentFailed
from streams.models import RawJob
from streams.providers.base import Provider
from streams.routing.router import Router
from streams.vocab import PROVIDER_NAMES
from tests.routing.helpers import route

JOB = RawJob(
    job_id="r1",
    title="Senior Data Engineer",
    description="7+ years Python and Spark. Hybrid in Munich. EUR 90-110k per year.",
)


def alone(settings: Settings, name: str, **changes: object) -> Settings:
    return settings.model_copy(update={"llm_provider_chain": [name, "deepseek"], **changes})


@pytest.mark.parametrize("name", [p for p in PROVIDER_NAMES if p != "deepseek"])
async def test_an_invalid_answer_is_repaired_by_telling_the_model(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread, name: str
) -> None:
    sim.set_faults(name, outputs={"schema_invalid": 1.0}, repairable=True)
    router = Router(alone(base_settings, name).routing(), providers)
    routed = await route(router, JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        (name, "invalid_output"),
        (name, "repaired"),
    ]
    assert routed.completion.enrichment.seniority == "senior"
    assert routed.attempts[0].usage.output_tokens > 0, "the invalid answer was billed"
    assert sim.requests()[name] == 2


async def test_a_truncated_answer_gets_twice_the_room_within_the_cap(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", truncated_below=2048)
    settings = alone(base_settings, "openai", llm_max_output_tokens=1024)
    routed = await route(Router(settings.routing(), providers), JOB)
    assert [a.outcome for a in routed.attempts] == ["invalid_output", "repaired"]
    capped = dataclasses.replace(settings.routing(), repair_max_tokens=1024)
    fell_back = await route(Router(capped, providers), JOB)
    assert [(a.provider, a.outcome) for a in fell_back.attempts] == [
        ("openai", "invalid_output"),
        ("deepseek", "success"),
    ]


async def test_a_repair_that_fails_again_falls_back_and_off_means_no_repair(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", outputs={"schema_invalid": 1.0})  # not repairable
    routed = await route(Router(alone(base_settings, "openai").routing(), providers), JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        ("openai", "invalid_output"),
        ("openai", "invalid_output"),
        ("deepseek", "success"),
    ]
    off = alone(base_settings, "openai", llm_repair=False).routing()
    routed = await route(Router(off, providers), JOB)
    assert [(a.provider, a.outcome) for a in routed.attempts] == [
        ("openai", "invalid_output"),
        ("deepseek", "success"),
    ]


async def test_an_implausible_answer_is_invalid_and_its_repair_is_told_why(
    base_settings: Settings, providers: dict[str, Provider], sim: SimulatorThread
) -> None:
    # "EUR 90-110 per year": schema-valid, and no posting means it; the simulator's answer
    # stays wrong when told (it derives, it does not listen), so every attempt is invalid.
    job = JOB.model_copy(update={"description": "Python. Munich. EUR 90-110 per year."})
    router = Router(alone(base_settings, "openai").routing(), providers)
    with pytest.raises(EnrichmentFailed) as failed:
        await route(router, job)
    attempts = failed.value.attempts
    assert [(a.provider, a.outcome) for a in attempts] == [
        ("openai", "invalid_output"),
        ("openai", "invalid_output"),  # the repair, told the reason below
        ("deepseek", "invalid_output"),
        ("deepseek", "invalid_output"),
    ]
    assert all(a.error is not None and "a year is implausible" in a.error.message for a in attempts)
