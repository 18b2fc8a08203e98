"""Which telemetry the standard variables ask for."""

from __future__ import annotations

import pytest

from streams.errors import ConfigurationError
from streams.telemetry.sdk import from_env, signal_exporters
from streams.telemetry.spans import Telemetry


@pytest.mark.parametrize(
    ("environ", "traces", "metrics"),
    [
        ({}, [], []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, ["otlp"], ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"], []),
        (
            {"OTEL_TRACES_EXPORTER": "console,otlp", "OTEL_METRICS_EXPORTER": "none"},
            ["console", "otlp"],
            [],
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"}, [], []),
    ],
)
def test_the_variables_name_the_exporters(
    environ: dict[str, str], traces: list[str], metrics: list[str]
) -> None:
    assert signal_exporters("traces", environ) == traces
    assert signal_exporters("metrics", environ) == metrics


def test_without_variables_telemetry_is_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    assert from_env(install=False) is Telemetry.OFF
    assert not Telemetry.OFF.on


def test_console_traces_turn_it_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")
    assert from_env(install=False).on


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("OTEL_TRACES_EXPORTER", "zipkin", "exports otlp, console or none"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "speaks http/protobuf, grpc"),
    ],
)
def test_what_this_service_cannot_do_is_refused_with_what_it_can(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, said: str
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=said):
        from_env(install=False)
