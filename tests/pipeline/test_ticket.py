"""A job's ticket: its lane, its one deadline, its request, and records that are not jobs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from streams.config.settings import Settings
from streams.errors import RecordRejected
from streams.models import RawJob
from streams.pipeline.ticket import BATCH_DEFAULT_S, LIVE_MAX_S, WINDOW_S, Intake
from streams.providers.build import build_providers
from streams.routing.router import Router

HOUR_MS = 3600 * 1000


@pytest.fixture
async def intake() -> AsyncIterator[Intake]:
    settings = Settings(llm_job_deadline_s=45, llm_max_output_tokens=900)
    providers = build_providers(settings.provider)
    router = Router(settings.routing(), providers)
    yield Intake(router=router, default_lane="auto", batch_providers={"openai", "anthropic"})
    for provider in providers.values():
        await provider.aclose()


def _record(value: Any, *, offset: int = 7, headers: Any = None) -> Any:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return SimpleNamespace(
        topic="jobs.raw",
        partition=1,
        offset=offset,
        key=b"k",
        value=raw,
        timestamp=1_700_000_000.0,
        headers=headers or [],
    )


def _job(job_id: str = "j1", **options: Any) -> dict[str, Any]:
    job: dict[str, Any] = {"job_id": job_id, "title": "Engineer", "description": "Build things."}
    if options:
        job["options"] = options
    return job


def test_auto_without_a_deadline_goes_live_with_the_live_default(intake: Intake) -> None:
    ticket = intake.take(_record(_job()), since=intake.clock())
    assert ticket.lane == "live"
    assert ticket.budget_s == 45
    assert ticket.deadline.left() == pytest.approx(45, abs=1)
    assert ticket.request.max_tokens == 900
    assert ticket.source == "jobs.raw/1/7"
    assert ticket.headers == {"llm-source": b"jobs.raw/1/7"}


def test_auto_with_a_day_or_more_goes_to_the_batch_lane(intake: Intake) -> None:
    ticket = intake.take(_record(_job(lane="auto", deadline_ms=24 * HOUR_MS)), since=intake.clock())
    assert ticket.batch is not None
    assert ticket.batch.provider == "openai"
    assert ticket.budget_s == WINDOW_S
    assert ticket.due_at - ticket.taken_at == timedelta(hours=24)
    # waiting in this process is still bounded like a live call
    assert ticket.deadline.left() <= LIVE_MAX_S


def test_auto_with_less_than_a_day_goes_live(intake: Intake) -> None:
    ticket = intake.take(_record(_job(lane="auto", deadline_ms=2 * HOUR_MS)), since=intake.clock())
    assert ticket.lane == "live"
    assert ticket.budget_s == LIVE_MAX_S


def test_the_batch_lane_without_a_deadline_has_the_vendors_window(intake: Intake) -> None:
    ticket = intake.take(_record(_job(lane="batch")), since=intake.clock())
    assert ticket.batch is not None
    assert ticket.budget_s == BATCH_DEFAULT_S


def test_a_provider_without_a_batch_api_keeps_the_job_live(intake: Intake) -> None:
    job = _job(lane="batch", preferred_provider="deepseek")
    assert intake.take(_record(job), since=intake.clock()).lane == "live"
    intake.router.set_enabled("openai", False)
    intake.router.set_enabled("anthropic", False)
    assert intake.take(_record(_job(lane="batch")), since=0).lane == "live"


def test_a_job_not_from_a_record_is_live(intake: Intake) -> None:
    ticket = intake.ticket(RawJob.model_validate(_job(lane="batch")))
    assert ticket.lane == "live"
    assert ticket.source is None
    assert ticket.headers == {}


def test_trace_context_is_kept_and_other_headers_are_not(intake: Intake) -> None:
    headers = [("traceparent", b"00-abc-def-01"), ("other", b"x"), ("tracestate", b"k=v")]
    ticket = intake.take(_record(_job(), headers=headers), since=0)
    assert dict(ticket.trace) == {"traceparent": "00-abc-def-01", "tracestate": "k=v"}


@pytest.mark.parametrize(
    ("value", "stage", "cause", "job_id"),
    [
        (b"\xff\xfe", "decode", "UnicodeDecodeError", None),
        (b"{not json", "decode", "JSONDecodeError", None),
        (
            json.dumps({"job_id": "named", "title": ""}).encode(),
            "validate",
            "ValidationError",
            "named",
        ),
    ],
)
def test_a_record_that_is_not_a_job_is_rejected_with_its_stage(
    intake: Intake, value: bytes, stage: str, cause: str, job_id: str | None
) -> None:
    with pytest.raises(RecordRejected) as caught:
        intake.take(_record(value), since=0)
    assert caught.value.stage == stage
    assert caught.value.job_id == job_id
    assert type(caught.value.__cause__).__name__ == cause


def test_gone_live_keeps_the_time_it_has_left(intake: Intake) -> None:
    ticket = intake.take(_record(_job(lane="batch", deadline_ms=HOUR_MS)), since=0)
    live = ticket.gone_live()
    assert live.lane == "live"
    assert live.due_at == ticket.due_at
    assert live.deadline.left() == pytest.approx(LIVE_MAX_S, abs=1)
    assert live.source == ticket.source


def test_a_job_without_a_lane_takes_the_default_lane_before_its_deadline_is_judged(
    intake: Intake,
) -> None:
    day = _job(deadline_ms=24 * HOUR_MS)
    assert intake.take(_record(day), since=0).lane == "batch", "LLM_LANE=auto here"
    live = Intake(router=intake.router, default_lane="live")
    with pytest.raises(RecordRejected, match="needs lane 'batch' or 'auto'") as caught:
        live.take(_record(day), since=0)
    assert caught.value.stage == "validate"
    assert caught.value.job_id == "j1"


def test_a_job_is_its_own_tenant_s_or_its_header_s_or_the_default(intake: Intake) -> None:
    def tenant_of(job: dict[str, Any], headers: Any = None) -> str:
        return intake.take(_record(job, headers=headers), since=0).job.tenant

    assert tenant_of(_job()) == "default"
    assert tenant_of(_job() | {"tenant": "jobs-board"}) == "jobs-board"
    assert tenant_of(_job(), [("tenant", b"team_7")]) == "team_7"
    assert tenant_of(_job() | {"tenant": "a"}, [("tenant", b"a")]) == "a", "both may say it"


@pytest.mark.parametrize(
    ("job_tenant", "header", "said"),
    [
        ("Not Valid", None, "tenant: String should match pattern"),
        (None, b"x" * 64, "header 'tenant': String should match pattern"),
        (None, b"", "header 'tenant': String should match pattern"),
        ("a", b"b", "the job's tenant is 'a' and its 'tenant' header says 'b'"),
    ],
)
def test_a_bad_or_contradicted_tenant_is_a_dead_letter_that_says_why(
    intake: Intake, job_tenant: str | None, header: bytes | None, said: str
) -> None:
    job = _job("t1") | ({"tenant": job_tenant} if job_tenant is not None else {})
    headers = [("tenant", header)] if header is not None else None
    with pytest.raises(RecordRejected) as caught:
        intake.take(_record(job, headers=headers), since=0)
    assert caught.value.stage == "validate"
    assert caught.value.job_id == "t1"
    assert said in str(caught.value)


async def test_a_tenant_s_lane_is_its_jobs_lane_unless_a_job_names_one() -> None:
    settings = Settings(llm_tenants={"bulk": {"lane": "batch"}})
    providers = build_providers(settings.provider)
    router = Router(settings.routing(), providers)
    intake = Intake(router=router, default_lane="live", batch_providers={"openai"})
    try:
        assert intake.take(_record(_job() | {"tenant": "bulk"}), since=0).lane == "batch"
        own = _job(lane="live") | {"tenant": "bulk"}
        assert intake.take(_record(own), since=0).lane == "live"
        assert intake.take(_record(_job()), since=0).lane == "live"
    finally:
        for provider in providers.values():
            await provider.aclose()
