"""Evaluation sets: each bad line refused with its number and field; the shipped set loads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from streams.evals.sets import EvalSetError, load_set
from tests.conftest import ROOT

JOB = {"job_id": "a", "title": "Engineer", "description": "Go."}


def _write(tmp_path: Path, *items: object) -> Path:
    path = tmp_path / "set.jsonl"
    lines = [item if isinstance(item, str) else json.dumps(item) for item in items]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_labels_are_flattened_by_path_and_a_null_object_labels_every_field_under_it(
    tmp_path: Path,
) -> None:
    loaded = load_set(
        _write(
            tmp_path,
            {"job": JOB, "expected": {"seniority": "mid", "salary": {"currency": "EUR"}}},
            {"job": JOB | {"job_id": "b"}, "expected": {"salary": None, "years_experience": None}},
        )
    )
    first, second = loaded.items
    assert first.labels == {"seniority": "mid", "salary.currency": "EUR"}
    assert second.labels == {
        "years_experience": None,
        "salary.min": None,
        "salary.max": None,
        "salary.currency": None,
        "salary.period": None,
    }
    assert first.digest != second.digest
    assert len(loaded.digest) == 12


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("{not json", "line 2: Invalid JSON"),
        ({"job": JOB | {"job_id": "b"}}, "line 2: expected: Field required"),
        ({"job": {"job_id": "b"}, "expected": {"seniority": "mid"}}, "line 2: job.title"),
        (
            {"job": JOB | {"job_id": "b"}, "expected": {"seniorty": "mid"}},
            "expected.seniorty: not a field",
        ),
        (
            {"job": JOB | {"job_id": "b"}, "expected": {"seniority": "wizard"}},
            "expected.seniority: 'wizard' is not one of",
        ),
        (
            {"job": JOB | {"job_id": "b"}, "expected": {"salary": {"min": "lots"}}},
            "expected.salary.min: 'lots' is not of type",
        ),
        (
            {"job": JOB | {"job_id": "b"}, "expected": {"salary": 5}},
            "expected.salary: an object or null",
        ),
        ({"job": JOB | {"job_id": "b"}, "expected": {}}, "line 2: expected: no field is labelled"),
        (
            {"job": JOB, "expected": {"seniority": "mid"}},
            "line 2: job_id 'a' is used on line 1 too",
        ),
    ],
)
def test_a_bad_line_is_refused_with_its_number_and_field(
    tmp_path: Path, line: object, says: str
) -> None:
    path = _write(tmp_path, {"job": JOB, "expected": {"seniority": "mid"}}, line)
    with pytest.raises(EvalSetError, match=re.escape(says)):
        load_set(path)


def test_the_shipped_set_loads_and_covers_the_hard_cases() -> None:
    loaded = load_set(ROOT / "evals" / "jobs.v1.jsonl")
    assert len(loaded.items) >= 60
    labels = [item.labels for item in loaded.items]
    assert (
        sum(item.get("salary.currency") is None and "salary.currency" in item for item in labels)
        >= 5
    )
    assert {item.get("salary.period") for item in labels} >= {"hour", "day", "month", "year"}
    assert len({item.get("salary.currency") for item in labels} - {None, "USD"}) >= 5
    longest = max(len(item.job.description) for item in loaded.items)
    assert longest > 5_000, "a very long posting"
