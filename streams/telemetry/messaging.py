"""Producing and consuming jobs in the caller's own trace (``JobsClient``, the CLI).

These use the process's global tracer: an application that set up OpenTelemetry gets a
``send`` span per job and a ``process`` span per result in its traces; one that did not
still passes on whatever context is current (an incoming request's, say) in the headers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from streams.telemetry.conventions import SCHEMA_URL, kafka_process, kafka_send
from streams.telemetry.propagation import as_headers, carrier_of, context_of, trace_of

__all__ = ["processing", "sending"]


@contextlib.contextmanager
def sending(topic: str, key: str) -> Iterator[list[tuple[str, bytes]]]:
    """A ``send {topic}`` PRODUCER span; yields the record headers that carry it."""
    tracer = trace.get_tracer("streams.client", schema_url=SCHEMA_URL)
    with tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes=kafka_send(topic, key),
    ):
        yield list(as_headers(carrier_of()).items())


@contextlib.contextmanager
def processing(record: Any, *, group: str) -> Iterator[None]:
    """A ``process {topic}`` CONSUMER span for an aiokafka record, continuing the trace
    its headers name: what the caller does meanwhile is part of that trace."""
    tracer = trace.get_tracer("streams.client", schema_url=SCHEMA_URL)
    with tracer.start_as_current_span(
        f"process {record.topic}",
        context=context_of(trace_of(record.headers)),
        kind=SpanKind.CONSUMER,
        attributes=kafka_process(record, group=group),
    ):
        yield
