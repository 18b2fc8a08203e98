"""The records' wire format with a Schema Registry, and without.

Framed the registry's way, a record is byte 0 the magic 0, bytes 1-4 the schema id
(big-endian), then the JSON. A record whose first byte is not 0 is plain JSON (a JSON text
never starts with a NUL), so readers take both. The five bytes are written here: the service
already has each record's JSON (pydantic's serializer), where a registry client's serializer
would take a dict and serialize it again.
"""

from __future__ import annotations

import struct
from typing import TypeVar

from pydantic import BaseModel

__all__ = ["decoded", "frame", "payload_of", "unframe"]

MAGIC = 0
_HEADER = struct.Struct(">bI")

M = TypeVar("M", bound=BaseModel)


def frame(schema_id: int, payload: bytes) -> bytes:
    return _HEADER.pack(MAGIC, schema_id) + payload


def unframe(value: bytes) -> tuple[int | None, bytes]:
    """(schema id, JSON) of a framed record; (None, value) of a plain one."""
    if len(value) >= _HEADER.size and value[0] == MAGIC:
        return _HEADER.unpack_from(value)[1], value[_HEADER.size :]
    return None, value


def payload_of(value: bytes | None) -> bytes:
    """A record's JSON, framed or not (what a reader that trusts the writer needs)."""
    return unframe(value or b"")[1]


def decoded(model: type[M], value: bytes | None) -> M:
    """A record's value as ``model``, framed or not; pydantic's ValidationError if it is
    not one."""
    return model.model_validate_json(payload_of(value))
