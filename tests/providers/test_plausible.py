"""What the schema admits and no posting says: each rule, and an answer that breaks one is
invalid, with the reason a repair gives back to the model."""

from __future__ import annotations

from typing import Any

import pytest

from streams.models import Enrichment
from streams.providers.plausible import bounded_schema, implausible
from streams.schemas import enrichment_schema
from tests.shadow.test_compare import BASE


def answer(**changes: Any) -> Enrichment:
    return Enrichment.model_validate(BASE | changes)


def salary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = BASE["salary"]
    return base | changes


def test_a_sensible_answer_passes() -> None:
    assert implausible(answer()) == []
    assert implausible(answer(salary=None, years_experience=None)) == []
    # small units are not judged by period: 12 lakh a year is 1,200,000 INR
    assert implausible(answer(salary=salary(min=1_200_000, max=1_600_000, currency="INR"))) == []


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"salary": salary(currency="johns")}, "not an ISO 4217 code"),
        ({"salary": salary(min=100_000, max=80_000)}, "above salary.max"),
        ({"salary": salary(min=-5, period=None)}, "negative"),
        ({"salary": salary(period="hour")}, "a hour is implausible"),
        ({"salary": salary(min=40, max=60)}, "a year is implausible"),
        ({"years_experience": 2018}, "not within 0-50"),
        ({"skills": ["Python", "python ", "SQL"]}, "lists 'python ' more than once"),
        ({"tech_stack": ["x" * 61]}, "longer than 60 characters"),
        ({"key_requirements": ["r"] * 11}, "at most 10"),
        ({"summary": "s" * 501}, "at most 500"),
    ],
)
def test_each_rule(changes: dict[str, Any], says: str) -> None:
    found = implausible(answer(**changes))
    assert len(found) == 1
    assert says in found[0]


def test_the_bounds_go_to_constrained_decoders_as_keywords() -> None:
    schema = bounded_schema()
    fields = schema["properties"]
    assert fields["skills"]["maxItems"] == 25
    assert fields["skills"]["items"]["maxLength"] == 60
    assert fields["years_experience"]["maximum"] == 50
    assert fields["salary"]["properties"]["currency"]["pattern"] == "^[A-Z]{3}$"
    assert "maxItems" not in enrichment_schema()["properties"]["skills"], "a copy, not an edit"
