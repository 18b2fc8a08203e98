"""The dead letter for a record that cannot be enriched: why, and the original record (its
bytes kept as text or base64, so nothing is lost and ``llm-streams replay`` can resend it)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import ValidationError

from streams.errors import RecordRejected, describe
from streams.models import (
    MAX_JOB_ID_CHARS,
    Attempt,
    DeadLetter,
    ErrorInfo,
    OriginalRecord,
    RawJob,
)
from streams.vocab import Stage

__all__ = ["MAX_COPIED_VALUE_BYTES", "dead_letter", "job_id_of", "original_of", "reason"]

# How much of an undeliverable record a dead letter copies (the rest stays addressable by
# topic/partition/offset); keeps the dead letter under Kafka's default 1 MB limit.
MAX_COPIED_VALUE_BYTES = 256 * 1024

Encoding = Literal["utf-8", "base64"]


def dead_letter(
    original: OriginalRecord,
    stage: Stage,
    exc: BaseException,
    *,
    job: RawJob | None = None,
    job_id: str | None = None,
    attempts: Sequence[Attempt] = (),
) -> tuple[str | None, DeadLetter]:
    """The dead letter for the record ``original``, and the key to publish it under (the
    job id, or else the original key when it is text). ``job``: the job it held, if it held
    one; else ``job_id``, the id it named, if any. A RecordRejected is named after the parse
    error behind it."""
    named = exc.__cause__ if isinstance(exc, RecordRejected) and exc.__cause__ else exc
    if job is not None:
        job_id = job.job_id
    record = DeadLetter(
        job_id=job_id,
        tenant=job.tenant if job is not None else None,
        stage=stage,
        error=ErrorInfo(type=type(named).__name__, message=reason(exc)),
        attempts=list(attempts),
        original=original,
    )
    return job_id or (original.key if original.key_encoding == "utf-8" else None), record


def original_of(message: Any) -> OriginalRecord:
    """Where Faust ``message`` came from and what it held (its value up to a limit)."""
    key, key_encoding, _ = _text_or_base64(message.key)
    value, value_encoding, truncated = _text_or_base64(message.value, limit=MAX_COPIED_VALUE_BYTES)
    return OriginalRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
        key=key,
        key_encoding=key_encoding,
        value=value,
        value_encoding=value_encoding,
        value_truncated=truncated,
    )


def job_id_of(data: Any) -> str | None:
    """The record's job id, if it has a usable one: a job that fails validation for another
    field still names itself in its dead letter (and ``replay --job-id`` finds it)."""
    job_id = data.get("job_id") if isinstance(data, dict) else None
    if isinstance(job_id, str) and 0 < len(job_id) <= MAX_JOB_ID_CHARS:
        return job_id
    return None


def reason(exc: BaseException) -> str:
    """What was wrong, in words a producer can act on."""
    if isinstance(exc, ValidationError):
        return describe(exc, limit=10)
    if isinstance(exc, json.JSONDecodeError):
        return f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8: {exc.reason} at byte {exc.start}"
    if isinstance(exc, RecursionError):
        return "JSON nested too deeply"
    return str(exc)[:2000] or type(exc).__name__


def _text_or_base64(
    raw: bytes | None, *, limit: int | None = None
) -> tuple[str | None, Encoding, bool]:
    if raw is None:
        return None, "utf-8", False
    truncated = limit is not None and len(raw) > limit
    if truncated:
        raw = raw[:limit]
    try:
        return raw.decode("utf-8"), "utf-8", truncated
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode("ascii"), "base64", truncated
