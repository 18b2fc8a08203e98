"""A labelled evaluation set: JSONL, one item a line,
``{"job": <a raw job as jobs.raw takes it>, "expected": <the fields a person labelled>}``.

``expected`` holds any subset of the Enrichment, nested as in an answer (``{"salary":
{"currency": "EUR"}}``); a field given as null is labelled "not stated" (``"salary": null``:
every salary field); a field left out is not scored. Every line is checked on load, and a
bad one is refused with its line number and field.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, ConfigDict, ValidationError

from streams.errors import ConfigurationError, describe
from streams.models import RawJob
from streams.schemas import enrichment_schema, leaf_fields

__all__ = ["EvalItem", "EvalSet", "EvalSetError", "load_set"]


class EvalSetError(ConfigurationError):
    """A set that cannot be used: which line, which field, why."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid")

    job: RawJob
    expected: dict[str, Any]


@dataclass(frozen=True)
class EvalItem:
    job: RawJob
    labels: Mapping[str, Any]  # dotted path -> the labelled value (None: not stated)

    @functools.cached_property
    def digest(self) -> str:
        """The item's identity: its job's text and its labels."""
        text = json.dumps(
            [self.job.model_dump(mode="json"), dict(self.labels)], sort_keys=True
        ).encode()
        return hashlib.sha256(text).hexdigest()[:16]


@dataclass(frozen=True)
class EvalSet:
    name: str
    digest: str  # of the file's bytes: a run names the set it scored
    items: tuple[EvalItem, ...]

    def first(self, count: int) -> EvalSet:
        """The set's first ``count`` items, named so."""
        if count >= len(self.items):
            return self
        return EvalSet(f"{self.name} (first {count})", self.digest, self.items[:count])


def load_set(path: Path) -> EvalSet:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise EvalSetError(f"{path}: {exc.strerror}") from None
    items = []
    seen: dict[str, int] = {}
    for number, line in enumerate(data.decode("utf-8", "replace").splitlines(), start=1):
        if not line.strip():
            continue
        item = _item(line, where=f"{path} line {number}")
        if (first := seen.setdefault(item.job.job_id, number)) != number:
            raise EvalSetError(
                f"{path} line {number}: job_id {item.job.job_id!r} is used on line {first} too"
            )
        items.append(item)
    if not items:
        raise EvalSetError(f"{path}: no items")
    return EvalSet(name=path.name, digest=hashlib.sha256(data).hexdigest()[:12], items=tuple(items))


def _item(line: str, *, where: str) -> EvalItem:
    try:
        parsed = _Line.model_validate_json(line)
    except ValidationError as exc:
        raise EvalSetError(f"{where}: {describe(exc, limit=3)}") from None
    labels = dict(_flattened(parsed.expected, where=where))
    if not labels:
        raise EvalSetError(f"{where}: expected: no field is labelled")
    for path, value in labels.items():
        problem = next(_validators()[path].iter_errors(value), None)
        if problem is not None:
            raise EvalSetError(f"{where}: expected.{path}: {problem.message}")
    return EvalItem(job=parsed.job, labels=labels)


def _flattened(
    expected: Mapping[str, Any], *, where: str, prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    """Each labelled leaf by its dotted path; an object labelled null labels every field
    under it null."""
    fields = _validators()
    for name, value in expected.items():
        path = f"{prefix}{name}"
        under = [p for p in fields if p.startswith(f"{path}.")]
        if path not in fields and not under:
            raise EvalSetError(f"{where}: expected.{path}: not a field of the Enrichment")
        if not under:
            yield path, value
        elif value is None:
            yield from ((p, None) for p in under)
        elif isinstance(value, dict):
            yield from _flattened(value, where=where, prefix=f"{path}.")
        else:
            raise EvalSetError(f"{where}: expected.{path}: an object or null")


@functools.cache
def _validators() -> dict[str, Draft202012Validator]:
    """Each scored field's validator, from the Enrichment's schema."""
    return {path: Draft202012Validator(node) for path, node in leaf_fields(enrichment_schema())}
