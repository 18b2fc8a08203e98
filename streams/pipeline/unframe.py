"""A raw record's JSON: plain, or framed for a Schema Registry and checked against the
schema its id names (the id this service registered needs no check beyond the job's own
validation: the schema is generated from that model)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from streams.errors import RecordRejected
from streams.kafka.framing import unframe
from streams.kafka.schema_registry import Registry
from streams.pipeline.dead_letter import job_id_of

__all__ = ["RawValues"]


class RawValues:
    def __init__(self, *, registry: Registry | None = None, own_id: int | None = None) -> None:
        self.registry = registry
        self.own_id = own_id  # the raw topic's schema as this service registered it
        self._validators: dict[int, Draft202012Validator] = {}  # ids never change meaning

    async def payload(self, value: bytes | None) -> bytes | None:
        """The record's JSON; RecordRejected for a framed one that names a schema the
        registry does not have, or that its JSON does not match."""
        schema_id, payload = unframe(value or b"")
        if schema_id is None or schema_id == self.own_id:
            return value if schema_id is None else payload
        validator = self._validators.get(schema_id) or await self._fetch(schema_id)
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            raise RecordRejected(
                f"framed with schema id {schema_id}, not JSON: {exc}", stage="decode", job_id=None
            ) from exc
        error = best_match(validator.iter_errors(data))
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "the record"
            raise RecordRejected(
                f"does not match its schema (id {schema_id}) at {where}: {error.message}",
                stage="validate",
                job_id=job_id_of(data),
            )
        return payload

    async def _fetch(self, schema_id: int) -> Draft202012Validator:
        if self.registry is None:
            raise RecordRejected(
                f"framed for a Schema Registry (schema id {schema_id}), and this worker has "
                "none (LLM_SCHEMA_REGISTRY_URL)",
                stage="decode",
                job_id=None,
            )
        try:
            schema: dict[str, Any] | None = await asyncio.to_thread(self.registry.schema, schema_id)
        except Exception as exc:  # unreachable, or answering errors: the record waits nowhere
            raise RecordRejected(
                f"schema id {schema_id} could not be looked up in the Schema Registry: "
                f"{type(exc).__name__}: {exc}",
                stage="decode",
                job_id=None,
            ) from exc
        if schema is None:
            raise RecordRejected(
                f"schema id {schema_id} is not in the Schema Registry", stage="decode", job_id=None
            )
        validator = self._validators[schema_id] = Draft202012Validator(schema)
        return validator
