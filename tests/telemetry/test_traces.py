"""A job's trace on the real broker, with the SDK's in-memory exporter and reader: the
producer's trace continued, one GenAI span per attempt, the outcome's header, the metrics,
and the client's side (``JobsClient.publish`` and ``results``)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import httpx
import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.client import JobsClient
from streams.config.settings import Settings
from streams.models import RawJob
from streams.telemetry.spans import Telemetry
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"


class Recorded:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.metrics = InMemoryMetricReader()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.telemetry = Telemetry(
            tracer_provider=tracer_provider,
            meter_provider=MeterProvider(metric_readers=[self.metrics]),
        )

    def of_trace(self, trace_id: str) -> list[ReadableSpan]:
        return [
            s for s in self.spans.get_finished_spans() if f"{s.context.trace_id:032x}" == trace_id
        ]

    def metric_points(self) -> dict[str, list[Any]]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        return {
            metric.name: list(metric.data.data_points)
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
        }


def _parent(span: ReadableSpan) -> str | None:
    return f"{span.parent.span_id:016x}" if span.parent else None


def _id(span: ReadableSpan) -> str:
    return f"{span.context.span_id:016x}"


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _traceparent(record: Any) -> str:
    value: bytes = dict(record.headers)["traceparent"]
    return value.decode()


async def test_a_job_continues_its_producers_trace_one_span_per_attempt(
    settings: Settings, sim: SimulatorThread
) -> None:
    # openai fails for this job (both tries), deepseek answers: three attempt spans.
    sim.set_faults("openai", errors={500: 1.0}, retry_after_s=0.05, match="Job traced:")
    recorded = Recorded()
    app = await create_app(settings, telemetry=recorded.telemetry)
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    traceparent = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"
    async with app.running():
        await produce(
            bootstrap, raw, [job_record("traced")], headers=[("traceparent", traceparent.encode())]
        )
        await produce(bootstrap, raw, [job_record("untraced")])
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=2)
    by_id = {json.loads(r.value)["job_id"]: r for r in enriched}

    spans = recorded.of_trace(PRODUCER_TRACE)
    (process,) = [s for s in spans if s.kind == SpanKind.CONSUMER]
    assert process.name == f"process {raw}"
    assert _parent(process) == PRODUCER_SPAN, "the producer's span is its parent"
    assert process.attributes is not None
    assert process.attributes["messaging.destination.name"] == raw
    assert process.attributes["messaging.consumer.group.name"] == settings.llm_app_id
    assert process.attributes["messaging.kafka.message.key"] == "traced"
    assert process.attributes["llm_streams.outcome"] == "enriched"

    attempts = sorted(
        (s for s in spans if s.kind == SpanKind.CLIENT), key=lambda s: s.start_time or 0
    )
    assert [s.attributes["gen_ai.provider.name"] for s in attempts if s.attributes] == [
        "openai",
        "openai",
        "deepseek",
    ]
    assert all(_parent(s) == _id(process) for s in attempts)
    first, _, last = (_attributes(s) for s in attempts)
    assert attempts[0].name == f"chat {first['gen_ai.request.model']}"
    assert first["error.type"] == "ProviderUnavailable"
    assert first["llm_streams.outcome"] != "success"
    assert last["llm_streams.outcome"] == "success"
    assert "error.type" not in last
    assert last["gen_ai.usage.input_tokens"] > 0
    assert last["gen_ai.usage.output_tokens"] > 0
    assert last["llm_streams.cost_usd"] > 0
    assert last["gen_ai.response.finish_reasons"] == ("stop",)
    assert last["llm_streams.lane"] == "live"
    assert last["server.address"] == "127.0.0.1"
    assert "gen_ai.input.messages" not in last, "no content unless the operator opts in"
    assert any(s.name == "wait backoff openai" for s in spans), "the retry's wait is seen"

    # The result continues the process span; the job without a header has its own trace.
    assert _traceparent(by_id["traced"]) == f"00-{PRODUCER_TRACE}-{_id(process)}-01"
    own_trace = _traceparent(by_id["untraced"]).split("-")[1]
    assert own_trace != PRODUCER_TRACE
    (own,) = [s for s in recorded.of_trace(own_trace) if s.kind == SpanKind.CONSUMER]
    assert own.parent is None, "a record without a traceparent starts a new trace"

    points = recorded.metric_points()
    durations = points["gen_ai.client.operation.duration"]
    assert sum(p.count for p in durations) == 4  # three attempts, and the untraced job's one
    failed = [p for p in durations if "error.type" in p.attributes]
    assert sum(p.count for p in failed) == 2
    tokens = {p.attributes["gen_ai.token.type"]: p for p in points["gen_ai.client.token.usage"]}
    assert set(tokens) == {"input", "output"}
    assert tokens["input"].sum > 0


async def test_the_client_publishes_in_the_callers_trace_and_reads_results_in_the_jobs(
    settings: Settings, sim: SimulatorThread
) -> None:
    recorded = Recorded()
    app = await create_app(settings, telemetry=recorded.telemetry)
    bootstrap = settings.kafka_bootstrap_servers
    caller = SpanContext(
        trace_id=int(PRODUCER_TRACE, 16),
        span_id=int(PRODUCER_SPAN, 16),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    client = JobsClient(
        bootstrap=bootstrap,
        raw_topic=settings.llm_topic_raw,
        enriched_topic=settings.llm_topic_enriched,
        dead_letter_topic=settings.llm_topic_dead_letter,
    )
    async with app.running(), client:
        with trace.use_span(NonRecordingSpan(caller)):
            await client.publish(RawJob(job_id="c1", title="Engineer", description="Go."))
        async with contextlib.aclosing(
            client.results(group=f"{settings.llm_app_id}.reader", from_beginning=True)
        ) as results:
            async for result in results:
                current = trace.get_current_span().get_span_context()
                read = result.job_id
                break
    assert read == "c1"
    assert f"{current.trace_id:032x}" == PRODUCER_TRACE, "the reader is in the job's trace"
    (process,) = [s for s in recorded.of_trace(PRODUCER_TRACE) if s.kind == SpanKind.CONSUMER]
    assert _parent(process) == PRODUCER_SPAN


async def test_a_process_request_is_traced_in_the_callers_trace(
    settings: Settings, sim: SimulatorThread
) -> None:
    recorded = Recorded()
    app = await create_app(settings, telemetry=recorded.telemetry)
    traceparent = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"
    async with app.running(), httpx.AsyncClient(timeout=30) as web:
        answer = await web.post(
            f"http://127.0.0.1:{settings.llm_service_port}/process",
            json={"prompt": "Senior Go developer"},
            headers={"traceparent": traceparent},
        )
    assert answer.status_code == 200, answer.text
    spans = recorded.of_trace(PRODUCER_TRACE)
    (server,) = [s for s in spans if s.kind == SpanKind.SERVER]
    assert server.name == "POST /process"
    assert _parent(server) == PRODUCER_SPAN
    assert _attributes(server)["llm_streams.outcome"] == "enriched"
    (call,) = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert _parent(call) == _id(server)


async def test_a_batch_lane_job_is_answered_in_its_trace(
    settings: Settings, sim: SimulatorThread
) -> None:
    settings = settings.model_copy(
        update={"llm_batch_max_age_s": 0.5, "llm_batch_poll_s": 0.2, "llm_cache_enabled": False}
    )
    recorded = Recorded()
    app = await create_app(settings, telemetry=recorded.telemetry)
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    header = [("traceparent", f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01".encode())]
    job = job_record("batched", options={"lane": "batch", "preferred_provider": "openai"})
    async with app.running():
        await produce(bootstrap, raw, [job], headers=header)
        (record,) = await consume(bootstrap, settings.llm_topic_enriched, count=1)
    spans = recorded.of_trace(PRODUCER_TRACE)
    (process,) = [s for s in spans if s.kind == SpanKind.CONSUMER]
    (call,) = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert _parent(call) == _id(process), "the batch lane finishes the job in its trace"
    attributes = _attributes(call)
    assert attributes["llm_streams.lane"] == "batch"
    assert attributes["llm_streams.batch_id"]
    assert attributes["llm_streams.outcome"] == "success"
    assert _traceparent(record) == f"00-{PRODUCER_TRACE}-{_id(process)}-01"
