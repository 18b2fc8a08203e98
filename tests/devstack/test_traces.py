"""Where ``llm-streams up`` sends the worker's traces (building Jaeger itself needs the Go
module proxy, which a test may not reach: ``make run TRACES=1`` is tried by hand)."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest

from devstack.supervisor import trace_destination
from devstack.traces import OTLP_HTTP, OTLP_HTTP_PORT


def test_traces_configured_by_the_environment_go_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert trace_destination(env, wanted=True, logs=tmp_path) is None
    assert env == {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
    assert "traces: to http://collector:4318" in capsys.readouterr().out


def test_without_a_destination_traces_are_off_and_up_says_how_to_turn_them_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env: dict[str, str] = {}
    assert trace_destination(env, wanted=False, logs=tmp_path) is None
    assert env == {}
    assert "traces: off (--traces starts a local Jaeger" in capsys.readouterr().out


def test_a_receiver_already_on_the_otlp_port_is_used_rather_than_a_second_jaeger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        with contextlib.suppress(OSError):  # taken already: by a receiver, the same case
            listener.bind(("127.0.0.1", OTLP_HTTP_PORT))
            listener.listen()
        env: dict[str, str] = {}
        assert trace_destination(env, wanted=True, logs=tmp_path) is None
    assert env == {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP_HTTP}
    assert "already listening" in capsys.readouterr().out
