"""API keys never appear in topics, logs, web responses or error texts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient

from devstack.harness import SimulatorThread, worker_process
from devstack.otlp import OtlpReceiver
from tests.conftest import ROOT
from tests.kafka_helpers import produce

pytestmark = pytest.mark.slow

SENTINELS = {
    "OPENAI_API_KEY": "sk-sentinel-openai-7f3a9c1e5b2d",
    "ANTHROPIC_API_KEY": "sk-ant-sentinel-4e8b2a6c0d1f",
    "GOOGLE_API_KEY": "AIza-sentinel-9c7e5a3b1d0f",
    "LLM_SERVICE_ADMIN_TOKEN": "admin-sentinel-2b4d6f8a0c1e",
}


async def _every_record(bootstrap: str, prefix: str) -> bytes:
    """Keys and values of every record in every topic of this test's app."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        *topics, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    seen = bytearray()
    try:
        while batches := await consumer.getmany(timeout_ms=2000):
            for records in batches.values():
                for record in records:
                    seen += (record.key or b"") + b"\n" + (record.value or b"") + b"\n"
    finally:
        await consumer.stop()
    assert len(topics) >= 6, topics
    return bytes(seen)


def test_sentinel_keys_appear_nowhere(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    # openai gets a wrong key (the simulator quotes it back in its 401), so every job
    # fails over to deepseek; anthropic and gemini keys sit in the settings unused.
    receiver = OtlpReceiver()
    env = worker_env | SENTINELS | {"LLM_PROVIDER_CHAIN": "openai,deepseek"}
    log = tmp_path / "worker.log"
    admin = {"Authorization": f"Bearer {SENTINELS['LLM_SERVICE_ADMIN_TOKEN']}"}
    responses: list[str] = []
    with receiver.running(), worker_process(env | receiver.env(), log):
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        subprocess.run(
            [sys.executable, "-m", "streams", "produce", str(ROOT / "examples" / "jobs.jsonl")],
            env=os.environ | env,
            capture_output=True,
            check=True,
            timeout=60,
        )
        raw_records: list[tuple[bytes | None, bytes]] = [(b"bad", b"{not json")]
        asyncio.run(produce(env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"], raw_records))
        processed = httpx.post(f"{url}/process", json={"prompt": "Senior Go developer"})
        responses.append(processed.text)
        assert processed.json()["provider"] == "deepseek"
        for path in (
            "/health",
            "/status",
            "/statistics",
            "/providers",
            "/providers/openai",
            "/providers/openai/health",
            "/config",
            "/metrics",
            "/openapi.json",
            "/",
        ):
            responses.append(httpx.get(f"{url}{path}").text)
        tested = httpx.post(f"{url}/providers/openai/test", headers=admin)
        assert tested.json()["ok"] is False, "a live call with the wrong key fails"
        responses.append(tested.text)
        responses.append(httpx.post(f"{url}/providers/nobody/test", headers=admin).text)
        # the failed openai attempts' spans, exported within the processor's delay
        receiver.wait_for(lambda r: any(s["attributes"].get("error.type") for s in r.spans()))
    records = asyncio.run(_every_record(env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_APP_ID"]))
    assert b"AuthenticationError" in records, "the failed openai attempts were recorded"
    everything = {
        "topics": records.decode("utf-8", "replace"),
        "worker log": log.read_text(errors="replace"),
        "web responses": "\n".join(responses),
        "exported spans and metrics": receiver.raw().decode("utf-8", "replace"),
    }
    for place, text in everything.items():
        for name, secret in SENTINELS.items():
            assert secret not in text, f"{name} leaked into the {place}"
