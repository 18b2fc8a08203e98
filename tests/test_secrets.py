"""API keys, the Kafka password and the TLS key's password never appear in topics, logs, web
responses or error texts (a worker on the three-broker SASL_SSL cluster)."""

from __future__ import annotations

import asyncio
import datetime
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from devstack.harness import SimulatorThread, worker_process
from devstack.otlp import OtlpReceiver
from streams.config.settings import load_settings
from streams.kafka.security import client_options
from tests.conftest import ROOT
from tests.kafka_helpers import produce

pytestmark = pytest.mark.slow

SENTINELS = {
    "OPENAI_API_KEY": "sk-sentinel-openai-7f3a9c1e5b2d",
    "ANTHROPIC_API_KEY": "sk-ant-sentinel-4e8b2a6c0d1f",
    "GOOGLE_API_KEY": "AIza-sentinel-9c7e5a3b1d0f",
    "LLM_SERVICE_ADMIN_TOKEN": "admin-sentinel-2b4d6f8a0c1e",
    "KAFKA_SSL_KEY_PASSWORD": "keypw-sentinel-6a0e3c9b7d1f",
}


def _client_certificate(directory: Path, password: str) -> dict[str, str]:
    """A client certificate with its key encrypted by ``password``: the worker loads it into
    its TLS context (the cluster does not ask for it)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "client.pem", directory / "client.key"
    certfile.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(password.encode()),
        )
    )
    return {"KAFKA_SSL_CERTFILE": str(certfile), "KAFKA_SSL_KEYFILE": str(keyfile)}


async def _every_record(unique: str) -> bytes:
    """Keys and values of every record in every topic of this test's app."""
    options = client_options(load_settings().cluster())
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if unique in t]
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(*topics, **options, group_id=None, auto_offset_reset="earliest")
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
    cluster_env: dict[str, str],
    tmp_path: Path,
    sim: SimulatorThread,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # openai gets a wrong key (the simulator quotes it back in its 401), so every job
    # fails over to deepseek; anthropic and gemini keys sit in the settings unused.
    receiver = OtlpReceiver()
    client = _client_certificate(tmp_path, SENTINELS["KAFKA_SSL_KEY_PASSWORD"])
    env = cluster_env | SENTINELS | client | {"LLM_PROVIDER_CHAIN": "openai,deepseek"}
    secrets = SENTINELS | {"KAFKA_SASL_PASSWORD": env["KAFKA_SASL_PASSWORD"]}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
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
        asyncio.run(produce(load_settings().cluster(), env["LLM_TOPIC_RAW"], raw_records))
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
    records = asyncio.run(_every_record(unique))
    assert b"AuthenticationError" in records, "the failed openai attempts were recorded"
    everything = {
        "topics": records.decode("utf-8", "replace"),
        "worker log": log.read_text(errors="replace"),
        "web responses": "\n".join(responses),
        "exported spans and metrics": receiver.raw().decode("utf-8", "replace"),
    }
    for place, text in everything.items():
        for name, secret in secrets.items():
            assert secret not in text, f"{name} leaked into the {place}"
