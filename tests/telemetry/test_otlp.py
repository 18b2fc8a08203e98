"""A worker process exports its spans and metrics over real OTLP/HTTP, configured by the
standard variables alone."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from devstack.harness import SimulatorThread, worker_process
from devstack.otlp import OtlpReceiver
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow

TRACE = "0af7651916cd43dd8448eb211c80319c"


def test_a_worker_exports_the_jobs_trace_and_the_genai_metrics_over_otlp_http(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    bootstrap, raw = worker_env["KAFKA_BOOTSTRAP_SERVERS"], worker_env["LLM_TOPIC_RAW"]
    header = [("traceparent", f"00-{TRACE}-b7ad6b7169203331-01".encode())]
    with OtlpReceiver().running() as receiver:
        with worker_process(worker_env | receiver.env(), tmp_path / "worker.log"):
            asyncio.run(produce(bootstrap, raw, [job_record("otlp-1")], headers=header))
            asyncio.run(consume(bootstrap, worker_env["LLM_TOPIC_ENRICHED"], count=1))
            receiver.wait_for(
                lambda r: _genai_span(r) and "gen_ai.client.token.usage" in r.metric_names()
            )
        spans = [s for s in receiver.spans() if s["trace_id"] == TRACE]
        metrics = receiver.metric_names()
    process = next(s for s in spans if s["name"] == f"process {raw}")
    assert process["parent_id"] == "b7ad6b7169203331"
    assert process["resource"]["service.name"] == "streams-under-test"
    (call,) = [s for s in spans if s["name"].startswith("chat ")]
    assert call["parent_id"] == process["span_id"]
    attributes = call["attributes"]
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["llm_streams.outcome"] == "success"
    assert {"gen_ai.client.operation.duration", "gen_ai.client.token.usage"} <= metrics


def _genai_span(receiver: OtlpReceiver) -> bool:
    return any(s["name"].startswith("chat ") and s["trace_id"] == TRACE for s in receiver.spans())
