"""The OpenTelemetry SDK, set up from the standard variables and nothing else.

Traces are on when ``OTEL_TRACES_EXPORTER`` names an exporter, or when it is unset and an
OTLP endpoint is (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``..._TRACES_ENDPOINT``); metrics alike
with ``OTEL_METRICS_EXPORTER``. ``OTEL_SDK_DISABLED=true`` turns both off. Exporters:
``otlp`` (HTTP/protobuf, or gRPC when ``OTEL_EXPORTER_OTLP_[TRACES_|METRICS_]PROTOCOL`` is
``grpc``) and ``console``. Everything else (endpoint, headers, timeouts, sampler, batch
delays, service name, resource attributes) the SDK and its exporters read themselves.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from streams.errors import ConfigurationError
from streams.telemetry.spans import Telemetry

__all__ = ["DEFAULT_SERVICE_NAME", "from_env", "signal_exporters"]

DEFAULT_SERVICE_NAME = "llm-provider-streams"
_PROTOCOLS = ("http/protobuf", "grpc")
# The OTLP exporters' modules (under opentelemetry.exporter.otlp.proto.{http,grpc}) and classes.
_OTLP = {
    "traces": ("trace_exporter", "OTLPSpanExporter"),
    "metrics": ("metric_exporter", "OTLPMetricExporter"),
}


def signal_exporters(signal: str, environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters named for ``signal`` ("traces" or "metrics"); [] when it is off."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get(f"OTEL_{signal.upper()}_EXPORTER")
    if named is None:
        endpoint = environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or environ.get(
            f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT"
        )
        return ["otlp"] if endpoint else []
    names = [name.strip().lower() for name in named.split(",") if name.strip()]
    return [name for name in names if name != "none"]


def from_env(*, install: bool = True) -> Telemetry:
    """Telemetry as this process's variables ask for (``Telemetry.OFF`` when they ask for
    none); the exporters read theirs from the environment too. With ``install`` the
    providers are also made the process's global ones, so libraries and ``JobsClient`` in
    the same process trace into them."""
    environ = os.environ
    span_exporters = [_exporter("traces", n, environ) for n in signal_exporters("traces")]
    metric_exporters = [_exporter("metrics", n, environ) for n in signal_exporters("metrics")]
    if not span_exporters and not metric_exporters:
        return Telemetry.OFF
    resource = _resource(environ)
    tracer_provider = None
    if span_exporters:
        tracer_provider = TracerProvider(resource=resource)
        for exporter in span_exporters:
            tracer_provider.add_span_processor(BatchSpanProcessor(exporter))
    meter_provider = None
    if metric_exporters:
        readers = [PeriodicExportingMetricReader(e) for e in metric_exporters]
        meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    if install:
        if tracer_provider is not None:
            trace.set_tracer_provider(tracer_provider)
        if meter_provider is not None:
            metrics.set_meter_provider(meter_provider)
    return Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        capture_content=_capture_content(environ),
    )


def _resource(environ: Mapping[str, str]) -> Resource:
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the attributes
    # given here would override them, so the default name only where neither names one.
    named = "OTEL_SERVICE_NAME" in environ or "service.name=" in environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    return Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})


def _protocol(signal: str, environ: Mapping[str, str]) -> str:
    protocol = environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
    )
    if protocol not in _PROTOCOLS:
        raise ConfigurationError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: this service speaks {', '.join(_PROTOCOLS)}"
        )
    return protocol


def _exporter(signal: str, name: str, environ: Mapping[str, str]) -> Any:
    """The exporter ``name`` (otlp or console) for ``signal`` (traces or metrics)."""
    if name == "console":
        return ConsoleSpanExporter() if signal == "traces" else ConsoleMetricExporter()
    if name != "otlp":
        raise ConfigurationError(
            f"OTEL_{signal.upper()}_EXPORTER names {name!r}: this service exports otlp, "
            "console or none"
        )
    transport = "grpc" if _protocol(signal, environ) == "grpc" else "http"
    module, exporter = _OTLP[signal]
    found = importlib.import_module(f"opentelemetry.exporter.otlp.proto.{transport}.{module}")
    return getattr(found, exporter)()  # it reads its endpoint, headers, timeout itself


def _capture_content(environ: Mapping[str, str]) -> bool:
    """The GenAI instrumentations' opt-in for prompt and answer text on spans."""
    flag = environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "")
    return flag.strip().lower() in ("true", "1", "span_only", "span_and_event")
