"""The backfill asks a candidate what live shadowing asks it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from streams.app import backfill_for
from streams.config.settings import Settings
from streams.config.slices import ShadowCandidate
from streams.models import EnrichedJobRecord, JobOptions, RawJob, Usage
from streams.shadow.backfill import Backfill
from tests.shadow.test_compare import BASE

JOB = RawJob(
    job_id="b1",
    title="Data Engineer",
    description="Spark and Airflow.",
    options=JobOptions(temperature=0.9, max_tokens=300, model="the-job-s-own-model"),
)


@pytest.fixture
async def backfill() -> AsyncIterator[Backfill]:
    candidate = ShadowCandidate(
        provider="openai",
        model="gpt-5.4-nano",
        sample=0.1,
        instructions="Be terse.",
        variant="terse",
    )
    settings = Settings(llm_temperature=0.2, llm_shadow=[candidate])
    made = backfill_for(settings, "openai/gpt-5.4-nano@terse")
    yield made
    await made.provider.aclose()


def _enriched(job: RawJob) -> EnrichedJobRecord:
    return EnrichedJobRecord.model_validate(
        {
            "schema_version": 2,
            "job_id": job.job_id,
            "job": job.model_dump(),
            "enrichment": BASE,
            "provider": "openai",
            "model": "gpt-5.4-mini",
            "attempts": [],
            "usage": Usage().model_dump(),
            "latency_ms": 1.0,
        }
    )


def test_a_backfilled_job_keeps_its_own_temperature_and_token_limit(backfill: Backfill) -> None:
    request = backfill.request(_enriched(JOB))
    assert request.temperature == 0.9, "the job's own sampling, as live shadowing uses"
    assert request.max_tokens == 300
    assert request.model == "gpt-5.4-nano"
    assert request.instructions == "Be terse."


def test_a_job_without_options_gets_the_configured_defaults(backfill: Backfill) -> None:
    request = backfill.request(_enriched(JOB.model_copy(update={"options": None})))
    assert request.temperature == 0.2
    assert request.model == "gpt-5.4-nano"
