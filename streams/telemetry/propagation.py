"""W3C trace context in Kafka record headers: what a record carries, read and written.

The worker always speaks W3C ``traceparent``/``tracestate`` (the messaging conventions'
choice), whatever propagators a process has installed globally."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TRACE_HEADERS",
    "as_headers",
    "attached",
    "carrier_of",
    "context_of",
    "in_environment_trace",
    "trace_id_of",
    "trace_of",
]

TRACE_HEADERS = ("traceparent", "tracestate")
_W3C = TraceContextTextMapPropagator()


def trace_of(headers: Any) -> dict[str, str]:
    """The trace context among a record's headers (a list of pairs, or a dict) or an HTTP
    request's."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    return {
        key: value if isinstance(value, str) else bytes(value).decode("latin-1")
        for key, value in pairs
        if key in TRACE_HEADERS and value is not None
    }


def as_headers(trace: Mapping[str, str]) -> dict[str, bytes]:
    return {key: value.encode("latin-1") for key, value in trace.items()}


def context_of(trace: Mapping[str, str]) -> Context:
    """The context a carrier names (an empty one, a new root, when it names none)."""
    return _W3C.extract(trace)


def carrier_of(context: Context | None = None) -> dict[str, str]:
    """The carrier for ``context`` (the current one by default); {} outside any span."""
    carrier: dict[str, str] = {}
    _W3C.inject(carrier, context)
    return carrier


def trace_id_of(trace: Mapping[str, str]) -> str | None:
    """The 32-hex trace id of a ``traceparent`` (version-traceid-parentid-flags)."""
    parts = trace.get("traceparent", "").split("-")
    return parts[1] if len(parts) == 4 and len(parts[1]) == 32 else None


@contextlib.contextmanager
def attached(trace: Mapping[str, str]) -> Iterator[None]:
    """Inside, the current context is the one ``trace`` names."""
    token = otel_context.attach(context_of(trace))
    try:
        yield
    finally:
        otel_context.detach(token)


def in_environment_trace(
    environ: Mapping[str, str] = os.environ,
) -> contextlib.AbstractContextManager[None]:
    """Inside, the current context is the one ``TRACEPARENT``/``TRACESTATE`` name (the
    OpenTelemetry convention for handing a trace to a command), if they name one."""
    carrier = {key: environ[key.upper()] for key in TRACE_HEADERS if key.upper() in environ}
    return attached(carrier) if carrier else contextlib.nullcontext()
