"""The topics' schemas in a real Schema Registry (Apicurio, started once per session), on
the real broker: framed and plain records in, framed records out that Confluent's
deserializer reads, refused changes, a registry that is down or goes away."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.client import JobsClient
from streams.config.settings import Settings, load_settings
from streams.config.slices import RegistryConfig
from streams.errors import ConfigurationError
from streams.kafka.framing import frame
from streams.kafka.schema_registry import Registry, for_registry, registered_contract, subject_of
from streams.models import TOPIC_MESSAGES, RawJob
from tests.conftest import ROOT, run_cli
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow


@pytest.fixture
def env(worker_env: dict[str, str], schema_registry: str) -> dict[str, str]:
    return worker_env | {"LLM_SCHEMA_REGISTRY_URL": schema_registry}


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def _client(url: str) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, "timeout": 10})


def _registered_before(url: str, subject: str, schema: dict[str, Any]) -> SchemaRegistryClient:
    """``schema`` registered under ``subject`` at BACKWARD, as an earlier release left it."""
    client = _client(url)
    client.register_schema(subject, Schema(json.dumps(schema), "JSON"))
    client.set_compatibility(subject, "BACKWARD")
    return client


def _read(client: SchemaRegistryClient, record: Any) -> dict[str, Any]:
    """As a consumer in another language would: the writer's schema fetched by its id."""
    deserializer = JSONDeserializer(
        None, schema_registry_client=client, conf={"subject.name.strategy.type": "TOPIC"}
    )
    value: dict[str, Any] = deserializer(
        record.value, SerializationContext(record.topic, MessageField.VALUE)
    )
    return value


async def test_plain_and_framed_jobs_are_enriched_and_every_record_out_is_framed(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sim: SimulatorThread
) -> None:
    settings = _settings(env, monkeypatch)
    url = env["LLM_SCHEMA_REGISTRY_URL"]
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    client = _client(url)
    # Another producer's schema: a job must carry "tenant" (ours does not).
    other = dict(registered_contract("raw-job"), required=["job_id", "tenant"])
    other_id = client.register_schema(f"{raw}.other-value", Schema(json.dumps(other), "JSON"))
    jobs = JobsClient(bootstrap=bootstrap, raw_topic=raw, schema_registry=url)
    app = await create_app(settings)
    async with app.running(), jobs:
        await jobs.publish(RawJob(job_id="framed", title="Engineer", description="Go."))
        plain_job = job_record("plain")
        await produce(bootstrap, raw, [plain_job])
        _, payload = job_record("unknown-id")
        await produce(bootstrap, raw, [(b"unknown-id", frame(987654, payload))])
        _, payload = job_record("no-tenant")
        await produce(bootstrap, raw, [(b"no-tenant", frame(other_id, payload))])
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=2)
        letters = await consume(bootstrap, settings.llm_topic_dead_letter, count=2)
        calls = await consume(bootstrap, settings.llm_topic_calls, count=2)
    assert {_read(client, r)["job_id"] for r in enriched} == {"framed", "plain"}
    for record in [*enriched, *letters, *calls]:
        assert record.value[0] == 0, "framed: magic byte, schema id, JSON"
    reasons = {r.key: _read(client, r)["error"]["message"] for r in letters}
    assert reasons[b"unknown-id"] == "schema id 987654 is not in the Schema Registry"
    assert reasons[b"no-tenant"].startswith(f"does not match its schema (id {other_id})")
    assert "'tenant' is a required property" in reasons[b"no-tenant"]
    assert {_read(client, r)["job_id"] for r in calls} == {"framed", "plain"}
    assert client.get_compatibility(subject_of(settings.llm_topic_enriched)) == "BACKWARD"


async def test_an_incompatible_change_is_refused_at_start_and_by_the_check(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(env, monkeypatch)
    url = env["LLM_SCHEMA_REGISTRY_URL"]
    subject = subject_of(settings.llm_topic_enriched)
    # What consumers have today, as if an older release had registered it: job_id a number.
    older = registered_contract("enriched-job")
    older["properties"] = dict(older["properties"], job_id={"type": "integer"})
    _registered_before(url, subject, older)

    with pytest.raises(ConfigurationError) as refused:
        await create_app(settings)
    assert subject in str(refused.value)
    assert "field 'job_id' changed type" in str(refused.value)

    checked = run_cli("schemas", "--check-registry", url, env=env)
    assert checked.returncode == 1, checked.stderr
    lines = dict(line.split(": ", 1) for line in checked.stdout.splitlines())
    assert lines[subject] == "INCOMPATIBLE: field 'job_id' changed type"
    assert lines[subject_of(settings.llm_topic_raw)] == "compatible"


async def test_a_new_major_version_is_refused_until_the_operator_upgrades_the_subject(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(env, monkeypatch)
    url = env["LLM_SCHEMA_REGISTRY_URL"]
    subject = subject_of(settings.llm_topic_enriched)
    # What an earlier release registered: enriched-job version 1, as it was published.
    published = json.loads((ROOT / "schemas" / "enriched-job.v1.json").read_text())
    client = _registered_before(url, subject, for_registry(published))

    with pytest.raises(ConfigurationError) as refused:
        await create_app(settings)
    assert "version 1 to 3" in str(refused.value)
    assert "llm-streams schemas --upgrade-registry" in str(refused.value)

    upgraded = run_cli("schemas", "--upgrade-registry", url, env=env)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"upgraded: {subject}"
    assert client.get_compatibility(subject) == "BACKWARD", "its level is given back"
    latest = json.loads(client.get_latest_version(subject).schema.schema_str or "{}")
    assert latest["version"] == 3
    checked = run_cli("schemas", "--check-registry", url, env=env)
    assert f"{subject}: compatible" in checked.stdout
    again = run_cli("schemas", "--upgrade-registry", url, env=env)
    assert again.stdout.strip() == "nothing to upgrade"


async def test_a_field_added_to_a_message_is_accepted_over_what_an_earlier_release_registered(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """raw-job, dead-letter and shadow-result version 2, enriched-job version 3 (its job's)
    and provider-call version 2 add the optional ``tenant`` (provider-call 3 also
    ``call_id`` and the outcome ``worker_lost``): the registry admits the current versions
    over the first at BACKWARD, with no upgrade by the operator."""
    settings = _settings(env, monkeypatch)
    url = env["LLM_SCHEMA_REGISTRY_URL"]
    earlier = {
        settings.llm_topic_raw: "raw-job.v1.json",
        settings.llm_topic_enriched: "enriched-job.v2.json",
        settings.llm_topic_dead_letter: "dead-letter.v1.json",
        settings.llm_topic_calls: "provider-call.v1.json",
        settings.llm_topic_shadow: "shadow-result.v1.json",
    }
    for topic, published in earlier.items():
        schema = json.loads((ROOT / "schemas" / published).read_text())
        _registered_before(url, subject_of(topic), for_registry(schema))

    checked = run_cli("schemas", "--check-registry", url, env=env)
    lines = dict(line.split(": ", 1) for line in checked.stdout.splitlines())
    assert {lines[subject_of(topic)] for topic in earlier} == {"compatible"}
    await create_app(settings)  # registers them
    client = _client(url)
    for topic in earlier:
        latest = json.loads(client.get_latest_version(subject_of(topic)).schema.schema_str or "{}")
        assert latest["version"] == TOPIC_MESSAGES[earlier[topic].split(".")[0]].contract_version
        assert "tenant" in json.dumps(latest["properties"])


async def test_a_registry_that_is_down_at_start_is_a_clear_error_not_a_hang(
    worker_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from devstack.broker.launcher import free_port

    down = f"http://127.0.0.1:{free_port()}/apis/ccompat/v7"
    settings = _settings(worker_env | {"LLM_SCHEMA_REGISTRY_URL": down}, monkeypatch)
    began = time.monotonic()
    with pytest.raises(ConfigurationError, match="cannot be reached"):
        await create_app(settings)
    assert time.monotonic() - began < 30


async def test_the_cached_ids_keep_the_pipeline_going_when_the_registry_goes_away(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, sim: SimulatorThread
) -> None:
    real = env["LLM_SCHEMA_REGISTRY_URL"]
    with _Forwarder(real) as forwarder:
        settings = _settings(env | {"LLM_SCHEMA_REGISTRY_URL": forwarder.url}, monkeypatch)
        raw = settings.llm_topic_raw
        registry = Registry(RegistryConfig(url=forwarder.url, basic_auth=None))
        raw_id = registry.register({raw: registered_contract("raw-job")})[raw]
        app = await create_app(settings)
        async with app.running():
            forwarder.cut()
            _, payload = job_record("after-the-registry")
            records = [(b"after-the-registry", frame(raw_id, payload)), job_record("plain")]
            await produce(settings.kafka_bootstrap_servers, raw, records)
            enriched = await consume(
                settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=2
            )
    client = _client(real)
    assert {_read(client, r)["job_id"] for r in enriched} == {"after-the-registry", "plain"}


class _Forwarder:
    """TCP to ``target``'s host and port, through threads of its own (the registry's client
    blocks the test's event loop); ``cut()`` stops it and drops its connections: the
    registry gone, as far as the worker can tell."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.host, port = target.split("/")[2].split(":")
        self.port = int(port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        local = self.listener.getsockname()[1]
        return self.target.replace(f"{self.host}:{self.port}", f"127.0.0.1:{local}")

    def _accept(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                client, _ = self.listener.accept()
                upstream = socket.create_connection((self.host, self.port))
                self.sockets += [client, upstream]
                for source, sink in ((client, upstream), (upstream, client)):
                    threading.Thread(target=_pipe, args=(source, sink), daemon=True).start()

    def cut(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def __enter__(self) -> _Forwarder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)


async def test_produce_frames_the_jobs_and_tail_reads_them(env: dict[str, str]) -> None:
    produced = run_cli("produce", str(ROOT / "examples" / "jobs.jsonl"), env=env)
    assert produced.returncode == 0, produced.stderr
    raw = await consume(env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"], count=33)
    assert all(record.value[0] == 0 for record in raw)
    tailed = run_cli(
        "tail",
        "--topic",
        env["LLM_TOPIC_RAW"],
        "--from-beginning",
        "--limit",
        "3",
        "--timeout",
        "20",
        env=env,
    )
    assert [json.loads(line)["job_id"][:3] for line in tailed.stdout.splitlines()] == ["ex-"] * 3
