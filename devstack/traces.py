"""A local trace viewer for ``llm-streams up --traces``: Jaeger, built once from the Go
module proxy (the machines this runs on reach it; no registry they reach ships a Jaeger
binary), run with its built-in all-in-one configuration: in-memory storage, OTLP on
4317 (gRPC) and 4318 (HTTP), the UI on 16686."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any

import httpx

from streams.errors import StreamsError

__all__ = [
    "JAEGER_VERSION",
    "OTLP_HTTP",
    "OTLP_HTTP_PORT",
    "UI",
    "ensure_jaeger",
    "jaeger_binary",
    "start_jaeger",
]

JAEGER_MODULE = "github.com/jaegertracing/jaeger"
JAEGER_VERSION = "v1.75.0"
OTLP_HTTP_PORT = 4318
OTLP_HTTP = f"http://127.0.0.1:{OTLP_HTTP_PORT}"
UI = "http://127.0.0.1:16686"


def jaeger_binary() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-streams" / f"jaeger-{JAEGER_VERSION}" / "jaeger"


def ensure_jaeger(log: IO[bytes]) -> Path:
    """The Jaeger binary, built on first use (a few minutes; the build's output to ``log``)."""
    binary = jaeger_binary()
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise StreamsError(
            "'go' is not on PATH: the local trace viewer is Jaeger built from the Go module "
            "proxy (or set OTEL_EXPORTER_OTLP_ENDPOINT to a collector you run)"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="jaeger-build-") as build:
        # A module of its own to build in: the go command fetches a tool's dependencies at
        # the versions its go.mod pins only from within a module.
        Path(build, "go.mod").write_text("module local/traceviewer\n\ngo 1.24\n")
        package = f"{JAEGER_MODULE}/cmd/jaeger"
        for command in (
            [go, "get", "-tool", f"{package}@{JAEGER_VERSION}"],
            [go, "build", "-o", str(binary.with_suffix(".part")), package],
        ):
            done = subprocess.run(command, cwd=build, stdout=log, stderr=log, check=False)
            if done.returncode != 0:
                raise StreamsError(
                    f"building Jaeger failed ({' '.join(command[1:3])}); see {log.name}"
                )
    binary.with_suffix(".part").rename(binary)
    return binary


def start_jaeger(binary: Path, log: IO[bytes], **popen: Any) -> subprocess.Popen[bytes]:
    """Jaeger running, once its UI answers."""
    process = subprocess.Popen([str(binary)], stdout=log, stderr=log, **popen)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(UI, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise StreamsError(f"Jaeger did not start; see {log.name}")
