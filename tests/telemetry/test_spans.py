"""Attempt spans around the calls they time, with the SDK's in-memory exporter and the
simulator (no broker): open while the request runs, so what the call does nests under them,
and ended with the attempt's outcome."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from devstack.harness import SimulatorThread
from streams.config.settings import Settings
from streams.config.slices import LimitsConfig
from streams.errors import EnrichmentFailed
from streams.models import RawJob
from streams.providers.base import Provider
from streams.routing.router import Router
from streams.telemetry.spans import Telemetry

JOB = RawJob(job_id="s1", title="Backend Engineer", description="Go and Postgres. Remote.")


@pytest.fixture
def exported() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer_provider(exported: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    yield provider
    provider.shutdown()


@pytest.fixture
def settings(base_settings: Settings) -> Settings:
    return base_settings.model_copy(update={"llm_retry_attempts": 1})


def _router(
    settings: Settings, providers: dict[str, Provider], tracer_provider: TracerProvider
) -> Router:
    telemetry = Telemetry(tracer_provider=tracer_provider)
    return Router(settings.routing(), providers, telemetry=telemetry)


def _attempts(exported: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exported.get_finished_spans() if s.kind == SpanKind.CLIENT]


async def test_the_span_is_open_around_the_call_and_what_the_call_does_nests_under_it(
    settings: Settings,
    providers: dict[str, Provider],
    tracer_provider: TracerProvider,
    exported: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracer = tracer_provider.get_tracer("test")
    adapter = providers["openai"]
    original = adapter.enrich

    async def enrich(*args: Any, **kwargs: Any) -> Any:
        with tracer.start_as_current_span("inside the call"):
            return await original(*args, **kwargs)

    monkeypatch.setattr(adapter, "enrich", enrich)
    router = _router(settings, providers, tracer_provider)
    await router.enrich(router.request_for(JOB), deadline=router.deadline(30))
    (attempt,) = _attempts(exported)
    (inside,) = [s for s in exported.get_finished_spans() if s.name == "inside the call"]
    assert attempt.name == "chat gpt-5.4-mini"
    assert inside.parent is not None
    assert inside.parent.span_id == attempt.context.span_id, "the call's work nests under it"
    assert attempt.start_time is not None
    assert inside.start_time is not None
    assert attempt.start_time <= inside.start_time
    assert attempt.end_time is not None
    assert inside.end_time is not None
    assert attempt.end_time >= inside.end_time, "ended after the answer, with its outcome"
    attributes: dict[str, Any] = dict(attempt.attributes or {})
    assert attributes["llm_streams.outcome"] == "success"
    assert attributes["gen_ai.usage.output_tokens"] > 0


async def test_a_failed_attempt_ends_its_span_as_an_error_and_the_fallback_has_its_own(
    settings: Settings,
    providers: dict[str, Provider],
    tracer_provider: TracerProvider,
    exported: InMemorySpanExporter,
    sim: SimulatorThread,
) -> None:
    sim.set_faults("openai", errors={401: 1.0})
    router = _router(settings, providers, tracer_provider)
    routed = await router.enrich(router.request_for(JOB), deadline=router.deadline(30))
    assert routed.provider == "deepseek"
    failed, answered = _attempts(exported)  # in the order they ended
    assert failed.status.status_code == StatusCode.ERROR
    assert dict(failed.attributes or {})["error.type"] == "AuthenticationError"
    assert answered.status.status_code == StatusCode.UNSET
    assert answered.name == "chat deepseek-v4-flash"


async def test_an_attempt_that_never_reached_a_provider_has_a_span_of_no_length(
    settings: Settings,
    providers: dict[str, Provider],
    tracer_provider: TracerProvider,
    exported: InMemorySpanExporter,
) -> None:
    # 200,000 tokens a call against 100 a minute: refused before it is sent.
    tight = LimitsConfig(tpm=100)
    small = settings.model_copy(
        update={"llm_provider_limits": {"openai": tight, "deepseek": tight}}
    )
    router = _router(small, providers, tracer_provider)
    with pytest.raises(EnrichmentFailed):
        await router.enrich(router.request_for(JOB), deadline=router.deadline(30))
    spans = _attempts(exported)
    assert spans
    for span in spans:
        assert span.start_time == span.end_time
        assert span.status.status_code == StatusCode.ERROR


def test_a_batch_api_call_is_a_span_around_it(
    tracer_provider: TracerProvider, exported: InMemorySpanExporter
) -> None:
    telemetry = Telemetry(tracer_provider=tracer_provider)
    with telemetry.batch_call("submit", provider="openai", batch_id="b-1"):
        inner = tracer_provider.get_tracer("test").start_span("inside")
        inner.end()
    call = next(s for s in exported.get_finished_spans() if s.name == "submit batch openai")
    assert call.kind == SpanKind.CLIENT
    assert dict(call.attributes or {})["llm_streams.batch_id"] == "b-1"
    (inside,) = [s for s in exported.get_finished_spans() if s.name == "inside"]
    assert inside.parent is not None
    assert inside.parent.span_id == call.context.span_id
