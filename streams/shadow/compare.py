"""Two enrichments compared field by field, by the rule each field's JSON Schema type gives,
so a field added to the Enrichment model is compared without new code here.

The rules (each score is 0..1, 1 = the same answer):

- an enum: exact;
- an integer (years of experience): exact;
- a number (salary bounds): equal within ``NUMBER_TOLERANCE`` of the larger, i.e. ±5 %;
- a list of strings (skills, tech stack): F1 of the two sets after normalisation (case,
  spacing and surrounding punctuation ignored);
- other text (the summary, a currency code): token-overlap F1, SQuAD's answer score (the
  lower-cased word tokens of each side, counted with repeats);
- an object (the salary): each of its fields on its own, named by a dotted path; an object
  that is null on one side makes every field under it null there;
- null on both sides is agreement, null on one side is not.

A job's overall agreement is the mean of its fields' scores.
"""

from __future__ import annotations

import functools
import re
from collections import Counter
from typing import Any

from streams.enrichment import EnrichmentV1
from streams.schemas import enrichment_schema, leaf_fields

__all__ = ["NUMBER_TOLERANCE", "agreement", "field_rules", "field_score", "scores", "value_at"]

NUMBER_TOLERANCE = 0.05
_WORD = re.compile(r"\w+")
_EDGE = re.compile(r"^[\W_]+|[\W_]+$")


@functools.cache
def field_rules() -> dict[str, str]:
    """Each compared field's dotted path and its rule: exact, number, set or text."""
    return {path: _rule(node) for path, node in leaf_fields(enrichment_schema())}


def _rule(node: dict[str, Any]) -> str:
    types = node.get("type", [])
    types = {types} if isinstance(types, str) else set(types)
    if "enum" in node or "integer" in types or "boolean" in types:
        return "exact"
    if "number" in types:
        return "number"
    return "set" if "array" in types else "text"


def scores(production: EnrichmentV1, candidate: EnrichmentV1) -> dict[str, float]:
    """Every field's score, by its dotted path."""
    ours, theirs = production.model_dump(mode="json"), candidate.model_dump(mode="json")
    return {
        path: field_score(path, value_at(ours, path), value_at(theirs, path))
        for path in field_rules()
    }


def agreement(field_scores: dict[str, float]) -> float:
    return round(sum(field_scores.values()) / len(field_scores), 6) if field_scores else 0.0


def field_score(path: str, a: Any, b: Any) -> float:
    """Two values of the field at ``path`` (JSON data) compared by its rule, 0..1."""
    return round(_score(field_rules()[path], a, b), 6)


def value_at(data: Any, path: str) -> Any:
    """The value at a dotted path of an answer's JSON data (None under a null object)."""
    for part in path.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _score(rule: str, a: Any, b: Any) -> float:
    if a is None or b is None:
        return 1.0 if a is None and b is None else 0.0
    if rule == "number":
        larger = max(abs(a), abs(b))
        return 1.0 if larger == 0 or abs(a - b) <= NUMBER_TOLERANCE * larger else 0.0
    if rule == "set":
        return _f1(Counter(set(map(_normal, a))), Counter(set(map(_normal, b))))
    if rule == "text":
        return _f1(Counter(_WORD.findall(str(a).lower())), Counter(_WORD.findall(str(b).lower())))
    return 1.0 if a == b else 0.0


def _normal(item: Any) -> str:
    return _EDGE.sub("", " ".join(str(item).lower().split()))


def _f1(a: Counter[str], b: Counter[str]) -> float:
    if not a and not b:
        return 1.0
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(b.values()), common / sum(a.values())
    return 2 * precision * recall / (precision + recall)
