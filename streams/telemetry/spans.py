"""The spans and GenAI metrics of one job, or nothing at all when telemetry is off.

A record is processed in a ``process {topic}`` CONSUMER span continuing its producer's
trace (``JobSpan``); inside it, one CLIENT span per provider attempt, named
``{operation} {model}`` with the GenAI attributes: opened when the request is sent and current
while it runs, so what the call does nests under it, and ended with the attempt's outcome
(``Telemetry.attempt``, which also records the GenAI client metrics); and a span for each
wait worth seeing (``waited``: paused intake, a rate-limit slot, a backoff, an outage). The
batch lane, which finishes a job long after its record was processed, works in the job's
trace again (``resumed``): a span around each call to a vendor's Batch API (``batch_call``)
and one for each job's item, from the lane taking it to its answer (``batch_item``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Coroutine, Iterator, Mapping
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import Span, SpanKind, StatusCode, Tracer
from opentelemetry.util.types import AttributeValue

from streams.models import Attempt
from streams.providers.base import Completion, EnrichRequest
from streams.providers.prompt import prompt_version, user_message
from streams.telemetry.conventions import (
    DURATION_BUCKETS_S,
    OPERATION,
    SCHEMA_URL,
    SERVICE,
    TOKEN_BUCKETS,
    kafka_process,
    provider_name,
)
from streams.telemetry.propagation import attached, carrier_of, context_of, trace_of

__all__ = ["AttemptSpan", "JobSpan", "Telemetry"]

T = TypeVar("T")
Attributes = dict[str, AttributeValue]

# A wait shorter than this is not worth a span (a free slot is taken in microseconds).
WAIT_WORTH_A_SPAN_NS = 1_000_000


class Telemetry:
    OFF: ClassVar[Telemetry]

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        capture_content: bool = False,
    ) -> None:
        self._tracer_provider = tracer_provider
        self._meter_provider = meter_provider
        self.capture_content = capture_content  # prompt and answer text on attempt spans
        self._tracer: Tracer | None = None
        if tracer_provider is not None:
            self._tracer = tracer_provider.get_tracer("streams", schema_url=SCHEMA_URL)
        self._metrics = _Metrics(meter_provider) if meter_provider is not None else None

    @property
    def on(self) -> bool:
        return self._tracer is not None or self._metrics is not None

    def consumed(self, message: Any, *, group: str) -> JobSpan:
        """The ``process`` span of a Faust record, in the trace its headers name (a new
        one when they name none)."""
        name = f"process {message.topic}"
        attributes = kafka_process(message, group=group)
        return self._job_span(name, SpanKind.CONSUMER, message.headers, attributes)

    def requested(self, headers: Any, *, method: str, route: str) -> JobSpan:
        """The SERVER span of a request to the web view (``/process``), in the trace its
        ``traceparent`` header names."""
        attributes: Attributes = {"http.request.method": method, "http.route": route}
        return self._job_span(f"{method} {route}", SpanKind.SERVER, headers, attributes)

    def _job_span(self, name: str, kind: SpanKind, headers: Any, attributes: Attributes) -> JobSpan:
        trace_headers = trace_of(headers)
        if self._tracer is None:
            return JobSpan(None, trace_headers, tracer=None)
        span = self._tracer.start_span(
            name, context=context_of(trace_headers), kind=kind, attributes=attributes
        )
        return JobSpan(span, trace_headers, tracer=self._tracer)

    def resumed(self, trace_headers: Mapping[str, str]) -> contextlib.AbstractContextManager[None]:
        """Spans made inside are the job's (its ticket's ``trace``)."""
        return contextlib.nullcontext() if self._tracer is None else attached(trace_headers)

    def waited(self, what: str, *, started_ns: int) -> None:
        """A span for a wait since ``started_ns`` (``time.time_ns()``) that is over now."""
        if self._tracer is not None:
            _waited(self._tracer, what, started_ns=started_ns, context=None)

    def ended(self, ending: str, *, error_type: str | None = None) -> None:
        """How the job of the current span ended."""
        if self._tracer is None:
            return
        span = trace.get_current_span()
        span.set_attribute(SERVICE.OUTCOME, ending)
        if error_type is not None:
            span.set_attribute("error.type", error_type)
            span.set_status(StatusCode.ERROR)

    @contextlib.contextmanager
    def attempt(
        self, *, job_id: str, request: EnrichRequest, lane: str, model: str, base_url: str
    ) -> Iterator[AttemptSpan]:
        """One provider attempt (``lane``: live, batch or shadow): its span is opened by
        ``AttemptSpan.sending`` around the request and ended by ``ended`` with the attempt;
        one the attempt never ended (cancelled) ends here, as an error."""
        span = AttemptSpan(
            self, job_id=job_id, request=request, lane=lane, model=model, base_url=base_url
        )
        try:
            yield span
        finally:
            span.abandon()

    def batch_item(
        self,
        attempt: Attempt,
        *,
        job_id: str,
        request: EnrichRequest,
        base_url: str,
        started_ns: int,
        completion: Completion | None = None,
    ) -> None:
        """A job's item of a batch, over now: from when the lane took the job (``started_ns``)
        to its answer, the time at the vendor included."""
        model = request.model or attempt.model
        with self.attempt(
            job_id=job_id, request=request, lane="batch", model=model, base_url=base_url
        ) as span:
            span.ended(attempt, completion, started_ns=started_ns)

    @contextlib.contextmanager
    def batch_call(self, operation: str, *, provider: str, batch_id: str) -> Iterator[None]:
        """A call to a vendor's Batch API (``operation``: submit, poll), as a CLIENT span
        around it."""
        if self._tracer is None:
            yield
            return
        attributes: Attributes = {
            "gen_ai.provider.name": provider_name(provider),
            SERVICE.BATCH_ID: batch_id,
            SERVICE.LANE: "batch",
        }
        name = f"{operation} batch {provider}"
        with self._tracer.start_as_current_span(name, kind=SpanKind.CLIENT, attributes=attributes):
            yield

    async def flush(self) -> None:
        """Export what is buffered (at shutdown), off the event loop: an exporter blocks."""
        for provider in (self._tracer_provider, self._meter_provider):
            if provider is not None:
                await asyncio.to_thread(provider.force_flush)


Telemetry.OFF = Telemetry()


class AttemptSpan:
    """One provider attempt's CLIENT span (nothing when telemetry is off)."""

    def __init__(
        self,
        telemetry: Telemetry,
        *,
        job_id: str,
        request: EnrichRequest,
        lane: str,
        model: str,
        base_url: str,
    ) -> None:
        self._telemetry = telemetry
        self._tracer = telemetry._tracer
        self._name = f"{OPERATION} {model}"
        self._request = request
        self._base_url = base_url
        self._attributes: Attributes = {SERVICE.LANE: lane, SERVICE.JOB_ID: job_id}
        self._span: Span | None = None
        self._ended = False

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """The span, opened now and current while the request runs."""
        if self._tracer is None:
            yield
            return
        self._span = self._tracer.start_span(self._name, kind=SpanKind.CLIENT)
        with trace.use_span(self._span, end_on_exit=False):
            yield

    def ended(
        self,
        attempt: Attempt,
        completion: Completion | None = None,
        *,
        started_ns: int | None = None,
    ) -> None:
        """The attempt's outcome: its span ends now (one never sent has no length, unless it
        started at ``started_ns``), and its duration and tokens are recorded."""
        self._ended = True
        request, telemetry = self._request, self._telemetry
        common = _common(attempt, request=request, base_url=self._base_url)
        if telemetry._metrics is not None:
            telemetry._metrics.record(attempt, common)
        if self._tracer is None:
            return
        span, end_ns = self._span, None
        if span is None:  # never sent: no length, unless it began earlier (a batch item)
            begin_ns = started_ns or time.time_ns()
            end_ns = None if started_ns else begin_ns
            span = self._tracer.start_span(self._name, kind=SpanKind.CLIENT, start_time=begin_ns)
        span.set_attributes(
            common | _details(attempt, request=request, completion=completion) | self._attributes
        )
        if telemetry.capture_content:
            span.set_attributes(_content(request, completion))
        if attempt.error is not None:
            span.set_status(StatusCode.ERROR, attempt.error.message)
        span.end(end_time=end_ns)

    def abandon(self) -> None:
        """End a span whose attempt never came (its call cancelled) as an error."""
        if self._span is not None and not self._ended:
            self._span.set_status(StatusCode.ERROR, "cancelled")
            self._span.end()
        self._ended = True


class JobSpan:
    """One record's ``process`` span (with telemetry off, only its record's context)."""

    def __init__(
        self, span: Span | None, trace_headers: Mapping[str, str], *, tracer: Tracer | None
    ) -> None:
        self._span = span
        self._tracer = tracer
        # What the job's ticket carries on: this span's context, so its outcome record
        # continues this span; with telemetry off, the producer's, passed through.
        self.trace: Mapping[str, str] = trace_headers
        if span is not None:
            self.trace = carrier_of(trace.set_span_in_context(span))

    def around(self, work: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
        """``work``, run inside this span, which ends with it."""
        return work if self._span is None else _inside(self._span, work)

    def close(self) -> None:
        """End the span of a record whose wait for capacity was cut short (a rebalance)."""
        if self._span is not None:
            self._span.end()

    def waited(self, what: str, *, started_ns: int) -> None:
        if self._span is not None and self._tracer is not None:
            context = trace.set_span_in_context(self._span)
            _waited(self._tracer, what, started_ns=started_ns, context=context)


async def _inside(span: Span, work: Coroutine[Any, Any, T]) -> T:
    with trace.use_span(span, end_on_exit=True):
        return await work


def _waited(tracer: Tracer, what: str, *, started_ns: int, context: Context | None) -> None:
    now = time.time_ns()
    if now - started_ns < WAIT_WORTH_A_SPAN_NS:
        return
    span = tracer.start_span(
        f"wait {what}", context=context, start_time=started_ns, attributes={SERVICE.WAIT: what}
    )
    span.end(end_time=now)


class _Metrics:
    """The GenAI client metrics, with the conventions' names, units and buckets."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("streams", schema_url=SCHEMA_URL)
        self.tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS,
        )
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS_S,
        )

    def record(self, attempt: Attempt, common: Attributes) -> None:
        self.duration.record(attempt.latency_ms / 1000, common)
        usage = attempt.usage
        if attempt.error is None:
            self.tokens.record(usage.input_tokens, common | {"gen_ai.token.type": "input"})
            self.tokens.record(usage.output_tokens, common | {"gen_ai.token.type": "output"})


def _common(attempt: Attempt, *, request: EnrichRequest, base_url: str) -> Attributes:
    """What the span and the metrics share (the metrics' attributes)."""
    url = urlsplit(base_url)
    attributes: Attributes = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": provider_name(attempt.provider),
        "gen_ai.request.model": request.model or attempt.model,
    }
    if url.hostname:
        attributes["server.address"] = url.hostname
        attributes["server.port"] = url.port or (443 if url.scheme == "https" else 80)
    if attempt.error is None:
        attributes["gen_ai.response.model"] = attempt.model
    else:
        attributes["error.type"] = attempt.error.type
    return attributes


def _details(
    attempt: Attempt, *, request: EnrichRequest, completion: Completion | None
) -> Attributes:
    usage = attempt.estimate or attempt.usage
    attributes: Attributes = {
        "gen_ai.output.type": "json",
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.usage.input_tokens": usage.input_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": usage.cached_input_tokens,
        "gen_ai.usage.cache_write.input_tokens": usage.cache_write_tokens,
        "gen_ai.usage.reasoning.output_tokens": usage.reasoning_tokens,
        SERVICE.COST_USD: usage.cost_usd,
        SERVICE.ATTEMPT: attempt.attempt,
        SERVICE.OUTCOME: attempt.outcome,
        SERVICE.PROMPT_VERSION: prompt_version(),
    }
    if request.temperature is not None:
        attributes["gen_ai.request.temperature"] = request.temperature
    if completion is not None:
        attributes["gen_ai.response.finish_reasons"] = [completion.finish_reason]
    if attempt.http_status is not None:
        attributes["http.response.status_code"] = attempt.http_status
    if attempt.estimate is not None:
        attributes[SERVICE.ESTIMATED] = True
    if attempt.batch_id is not None:
        attributes[SERVICE.BATCH_ID] = attempt.batch_id
    return attributes


def _content(request: EnrichRequest, completion: Completion | None) -> Attributes:
    """The conventions' opt-in message attributes (personal data: off by default)."""
    text = user_message(request.job)
    attributes: Attributes = {
        "gen_ai.input.messages": json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": text}]}]
        )
    }
    if completion is not None:
        answer = {
            "role": "assistant",
            "parts": [{"type": "text", "content": completion.text}],
            "finish_reason": completion.finish_reason,
        }
        attributes["gen_ai.output.messages"] = json.dumps([answer])
    return attributes
