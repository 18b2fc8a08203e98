"""The Enrichment contract, version 2: each rule, said so a repair can give it back to the
model; version 1 answers stay readable, and version 2 is a narrowing of version 1."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from streams.enrichment import Enrichment, EnrichmentV1
from streams.errors import describe
from tests.shadow.test_compare import BASE


def answer(**changes: Any) -> Enrichment:
    return Enrichment.model_validate(BASE | changes)


def salary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = BASE["salary"]
    return base | changes


def test_a_sensible_answer_passes() -> None:
    answer()
    answer(salary=None, years_experience=None)
    # small units are not judged by period: 12 lakh a year is 1,200,000 INR
    answer(salary=salary(min=1_200_000, max=1_600_000, currency="INR"))
    answer(salary=salary(min=52_000.5, max=60_000.25))  # cents
    answer(salary=salary(min=None, max=None, currency=None, period=None))  # said, no amount


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"salary": salary(currency="johns")}, "'johns' is not an ISO 4217 code"),
        ({"salary": salary(min=100_000, max=80_000)}, "above salary.max"),
        ({"salary": salary(min=-5)}, "salary.min: Input should be greater than"),
        ({"salary": salary(period=None)}, "salary amounts need their currency and period"),
        ({"salary": salary(currency=None, period=None)}, "need their currency and period"),
        ({"salary": salary(min=1_000, max=1e35, currency="VND")}, "more than any pay"),
        ({"salary": salary(min=1.5873694e-12, currency="JPY")}, "not in whole units or cents"),
        ({"salary": salary(period="hour")}, "a hour is implausible"),
        ({"salary": salary(min=40, max=60)}, "40 EUR a year is implausible"),
        ({"years_experience": 2018}, "years_experience: Input should be less than or equal"),
        ({"skills": ["Python", "python ", "SQL"]}, "'python ' is listed more than once"),
        ({"tech_stack": ["x" * 61]}, "tech_stack.0: String should have at most 60"),
        ({"key_requirements": ["r"] * 11}, "at most 10 items"),
        ({"summary": "s" * 501}, "summary: String should have at most 500"),
    ],
)
def test_each_rule_makes_an_answer_invalid_and_says_why(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        answer(**changes)
    assert raised.value.error_count() == 1
    assert says in describe(raised.value)
    EnrichmentV1.model_validate(BASE | changes)  # what version 1 admitted, it still reads


def test_every_version_2_answer_is_a_version_1_answer() -> None:
    assert issubclass(Enrichment, EnrichmentV1)
    assert set(Enrichment.model_fields) == set(EnrichmentV1.model_fields)
    dumped = answer().model_dump()
    assert EnrichmentV1.model_validate(dumped).model_dump() == dumped
