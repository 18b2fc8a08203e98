"""A receiver of OTLP over HTTP/protobuf on loopback: what a worker exports, for tests to
read (``OtlpReceiver``) and for benchmarks to send to (``python -m devstack.otlp``, which
keeps nothing and prints its endpoint)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue


class OtlpReceiver:
    def __init__(self, *, keep: bool = True) -> None:
        self.keep = keep
        self.bodies: list[tuple[str, bytes]] = []  # (path, body) in arrival order
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def env(self) -> dict[str, str]:
        """A worker's variables to export here, soon after each span and metric."""
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.endpoint,
            "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            "OTEL_SERVICE_NAME": "streams-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "OTEL_METRIC_EXPORT_INTERVAL": "500",
        }

    def wait_for(self, predicate: Callable[[OtlpReceiver], bool], *, timeout_s: float = 20) -> None:
        """Until ``predicate`` holds for what has arrived (an exporter sends in batches)."""
        deadline = time.monotonic() + timeout_s
        while not predicate(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"not received within {timeout_s} s: {self.spans()}")
            time.sleep(0.2)

    def raw(self) -> bytes:
        with self._lock:
            return b"\n".join(body for _, body in self.bodies)

    def spans(self) -> list[dict[str, Any]]:
        """Every span received: name, ids as hex, kind, attributes, status, resource."""
        found = []
        for path, body in self._received("/v1/traces"):
            del path
            request = ExportTraceServiceRequest.FromString(body)
            for resource_spans in request.resource_spans:
                resource = _attributes(resource_spans.resource.attributes)
                for scope in resource_spans.scope_spans:
                    for span in scope.spans:
                        found.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_id": span.parent_span_id.hex(),
                                "kind": span.kind,
                                "attributes": _attributes(span.attributes),
                                "status": span.status.code,
                                "resource": resource,
                            }
                        )
        return found

    def metric_names(self) -> set[str]:
        names = set()
        for _, body in self._received("/v1/metrics"):
            request = ExportMetricsServiceRequest.FromString(body)
            for resource_metrics in request.resource_metrics:
                for scope in resource_metrics.scope_metrics:
                    names |= {metric.name for metric in scope.metrics}
        return names

    def _received(self, path: str) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(p, b) for p, b in self.bodies if p == path]

    @contextlib.contextmanager
    def running(self) -> Iterator[OtlpReceiver]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if receiver.keep:
                    with receiver._lock:
                        receiver.bodies.append((self.path, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    return getattr(value, kind) if kind else None


def main() -> None:
    with OtlpReceiver(keep=False).running() as receiver:
        print(receiver.endpoint, flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
