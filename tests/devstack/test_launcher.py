"""The local Kafka launcher: ready line, clean stop, data kept across restarts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devstack.broker import LocalKafka
from devstack.broker.launcher import free_port
from tests.kafka_helpers import consume, produce

pytestmark = pytest.mark.slow


def test_data_survives_a_restart(tmp_path: Path) -> None:
    kafka = LocalKafka(data_dir=tmp_path / "kafka")
    with kafka:
        first = kafka.bootstrap_servers
        asyncio.run(produce(first, "kept", [(b"k", b"still here")]))
    with kafka:
        assert kafka.bootstrap_servers == first, "the port is kept while it is free"
        (record,) = asyncio.run(consume(kafka.bootstrap_servers, "kept", count=1))
    assert record.value == b"still here"


def test_cli_prints_ready_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streams",
            "broker",
            "--port",
            str(port),
            "--data-dir",
            str(tmp_path / "d"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == f"ready 127.0.0.1:{port}"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()


def test_cluster_ids_never_start_with_a_dash() -> None:
    from devstack.broker.launcher import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]
    assert all(len(i) == 22 and not i.startswith("-") for i in ids)
