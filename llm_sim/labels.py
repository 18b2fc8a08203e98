"""The labelled mode: answers from an evaluation set's labels instead of keyword rules, so a
test can inject a known error rate per field (the ``perturb`` faults) and check that the
scores find it. A job the set does not hold is answered by the keyword rules as before."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Labels"]


class Labels:
    def __init__(self) -> None:
        # title -> [(description, expected)]: a prompt names its job by both
        self._by_title: dict[str, list[tuple[str, dict[str, Any]]]] = {}

    def __len__(self) -> int:
        return sum(len(items) for items in self._by_title.values())

    def load(self, jsonl: str) -> int:
        """Replace the labels with an evaluation set's (JSONL: ``{"job": ..., "expected":
        ...}`` a line); how many items it holds. ValueError naming a bad line."""
        found: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for number, line in enumerate(jsonl.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                job, expected = item["job"], item["expected"]
                entry = (str(job["description"]), dict(expected))
                found.setdefault(str(job["title"]), []).append(entry)
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"line {number}: not an evaluation item ({exc})") from None
        self._by_title = found
        return len(self)

    def overlay(self, text: str, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer`` (Enrichment data) with the labelled fields of the job ``text`` is
        about, if the set holds it."""
        title = text.split("\n", 1)[0].removeprefix("Title:").strip()
        expected = next(
            (
                labels
                for description, labels in self._by_title.get(title, [])
                if description in text
            ),
            None,
        )
        return answer if expected is None else _merged(answer, expected)


def _merged(answer: dict[str, Any], labels: dict[str, Any]) -> dict[str, Any]:
    merged = dict(answer)
    for name, value in labels.items():
        if isinstance(value, dict):
            under = merged.get(name) or {key: None for key in ("min", "max", "currency", "period")}
            merged[name] = _merged(under, value)
        else:
            merged[name] = value
    return merged
