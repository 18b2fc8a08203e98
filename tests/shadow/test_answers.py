"""A candidate is asked, by the backfill and the evaluation sets, what live shadowing asks it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streams.app import candidate_calls
from streams.config.settings import Settings
from streams.config.slices import ShadowCandidate
from streams.models import JobOptions, RawJob
from streams.shadow.answers import CandidateCalls

JOB = RawJob(
    job_id="b1",
    title="Data Engineer",
    description="Spark and Airflow.",
    options=JobOptions(temperature=0.9, max_tokens=300, model="the-job-s-own-model"),
)


@pytest.fixture
async def calls() -> AsyncIterator[CandidateCalls]:
    candidate = ShadowCandidate(
        provider="openai",
        model="gpt-5.4-nano",
        sample=0.1,
        instructions="Be terse.",
        variant="terse",
    )
    settings = Settings(llm_temperature=0.2, llm_shadow=[candidate])
    made = candidate_calls(settings, "openai/gpt-5.4-nano@terse")
    yield made
    await made.provider.aclose()


def test_a_job_keeps_its_own_temperature_and_token_limit(calls: CandidateCalls) -> None:
    request = calls.request(JOB)
    assert request.temperature == 0.9, "the job's own sampling, as live shadowing uses"
    assert request.max_tokens == 300
    assert request.model == "gpt-5.4-nano"
    assert request.instructions == "Be terse."


def test_a_job_without_options_gets_the_configured_defaults(calls: CandidateCalls) -> None:
    request = calls.request(JOB.model_copy(update={"options": None}))
    assert request.temperature == 0.2
    assert request.model == "gpt-5.4-nano"
