"""The Schema Registry's wire format, and what a refused change is said as."""

from __future__ import annotations

import json

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

from streams.config.settings import Settings
from streams.kafka.framing import frame, payload_of, unframe
from streams.kafka.schema_registry import describe_change, subject_of
from streams.kafka.topics import Topics, raw_topic
from streams.models import RawJob
from streams.schemas import contract


def test_a_framed_record_is_the_magic_byte_the_id_and_the_json() -> None:
    framed = frame(260, b'{"a":1}')
    assert framed == b"\x00\x00\x00\x01\x04" + b'{"a":1}'
    assert unframe(framed) == (260, b'{"a":1}')
    assert unframe(b'{"a":1}') == (None, b'{"a":1}'), "plain JSON never starts with 0"
    assert payload_of(framed) == payload_of(b'{"a":1}') == b'{"a":1}'
    assert payload_of(None) == b""


def test_only_topics_with_an_id_are_framed() -> None:
    topics = Topics.of(Settings().kafka())
    framed = topics.framed_with({topics.raw.name: 7})
    job = RawJob(job_id="j1", title="Engineer", description="Go.")
    assert framed.raw.encode(job) == frame(7, topics.raw.encode(job))
    assert (
        framed.raw.decode(framed.raw.encode(job))
        == job
        == topics.raw.decode(topics.raw.encode(job))
    )
    assert framed.calls.schema_id is None
    assert b"null" not in topics.raw.encode(job), "absent fields left out, as producers write"


def test_confluents_deserializer_reads_what_the_registry_framing_writes() -> None:
    # The client's in-process registry (it has no compatibility levels: the real registry's
    # tests are in tests/kafka/test_schema_registry.py).
    client = SchemaRegistryClient.new_client({"url": "mock://framing-test"})
    schema = Schema(json.dumps(contract("raw-job")), "JSON")
    raw = raw_topic("jobs.raw")
    raw = raw.framed_with({raw.name: client.register_schema(subject_of(raw.name), schema)})
    job = RawJob(job_id="j1", title="Engineer", description="Go.")
    value = raw.encode(job)
    read = JSONDeserializer(None, schema_registry_client=client)(
        value, SerializationContext("jobs.raw", MessageField.VALUE)
    )
    assert read == job.model_dump(mode="json", exclude_none=True)


def test_a_refused_change_is_said_field_by_field() -> None:
    registered = {
        "properties": {"a": {"type": "string"}, "b": {"type": "integer"}, "c": {}},
        "required": ["a"],
    }
    new = {"properties": {"a": {"type": "integer"}, "c": {}, "d": {}}, "required": ["a", "d"]}
    assert describe_change(registered, new) == (
        "field 'd' is new and required; field 'b' is removed; field 'a' changed type"
    )
