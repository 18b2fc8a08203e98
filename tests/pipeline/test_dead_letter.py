"""A dead letter keeps the original record, readable or not, and says why in words."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

from pydantic import ValidationError

from streams.errors import RecordRejected
from streams.models import RawJob
from streams.pipeline.dead_letter import (
    MAX_COPIED_VALUE_BYTES,
    dead_letter,
    job_id_of,
    original_of,
    reason,
)


def _message(key: bytes | None, value: bytes | None) -> Any:
    return SimpleNamespace(
        topic="jobs.raw", partition=2, offset=9, key=key, value=value, timestamp=1.5
    )


def test_text_is_kept_as_text_and_bytes_as_base64() -> None:
    original = original_of(_message(b"k1", b"\xff\x00binary"))
    assert (original.key, original.key_encoding) == ("k1", "utf-8")
    assert original.value_encoding == "base64"
    assert original.value_bytes() == b"\xff\x00binary"
    assert original.timestamp_ms == 1500
    assert (original.topic, original.partition, original.offset) == ("jobs.raw", 2, 9)


def test_a_huge_value_is_cut_and_says_so() -> None:
    original = original_of(_message(None, b"x" * (MAX_COPIED_VALUE_BYTES + 10)))
    assert original.value_truncated
    assert len(original.value or "") == MAX_COPIED_VALUE_BYTES


def test_a_rejected_record_is_named_after_its_cause_and_keyed_by_its_id() -> None:
    try:
        RawJob.model_validate({"job_id": "j7", "title": ""})
    except ValidationError as cause:
        failure = RecordRejected(reason(cause), stage="validate", job_id="j7")
        failure.__cause__ = cause
    key, letter = dead_letter(original_of(_message(b"k", b"{}")), "validate", failure, job_id="j7")
    assert key == "j7"
    assert letter.error.type == "ValidationError"
    assert "title" in letter.error.message
    assert "description: Field required" in letter.error.message


def test_without_a_job_id_the_original_text_key_is_used() -> None:
    exc = json.JSONDecodeError("Expecting value", "x", 0)
    key, letter = dead_letter(original_of(_message(b"k9", b"x")), "decode", exc, job_id=None)
    assert key == "k9"
    assert letter.error.message == "not JSON: Expecting value at line 1 column 1"
    key, _ = dead_letter(original_of(_message(b"\xff", b"x")), "decode", exc, job_id=None)
    assert key is None, "a key that is not text is kept in the letter, base64, not used"


def test_only_a_usable_job_id_is_taken() -> None:
    assert job_id_of({"job_id": "ok"}) == "ok"
    assert job_id_of({"job_id": ""}) is None
    assert job_id_of({"job_id": 5}) is None
    assert job_id_of(["not", "a", "dict"]) is None
