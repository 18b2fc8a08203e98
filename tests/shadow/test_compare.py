"""Field-by-field comparison: each rule, driven by the Enrichment schema's types."""

from __future__ import annotations

from typing import Any

import pytest

from streams.enrichment import Enrichment
from streams.shadow.compare import agreement, field_rules, scores

BASE: dict[str, Any] = {
    "summary": "Senior Python engineer building Kafka pipelines.",
    "seniority": "senior",
    "role_family": "engineering",
    "skills": ["Python", "Kafka", "SQL"],
    "tech_stack": ["Python", "Kafka"],
    "years_experience": 5,
    "remote_policy": "hybrid",
    "salary": {"min": 80000, "max": 100000, "currency": "EUR", "period": "year"},
    "key_requirements": ["5 years of Python"],
}


def with_(**changes: Any) -> Enrichment:
    return Enrichment.model_validate(BASE | changes)


def test_the_rules_come_from_the_schema_types() -> None:
    assert field_rules() == {
        "summary": "text",
        "seniority": "exact",
        "role_family": "exact",
        "skills": "set",
        "tech_stack": "set",
        "years_experience": "exact",
        "remote_policy": "exact",
        "salary.min": "number",
        "salary.max": "number",
        "salary.currency": "exact",
        "salary.period": "exact",
        "key_requirements": "set",
    }


def test_the_same_answer_agrees_on_every_field() -> None:
    found = scores(with_(), with_())
    assert set(found.values()) == {1.0}
    assert agreement(found) == 1.0


def test_an_enum_is_exact() -> None:
    assert scores(with_(), with_(seniority="mid"))["seniority"] == 0.0


def test_a_list_is_set_f1_after_normalisation() -> None:
    found = scores(with_(), with_(skills=[" python ", "KAFKA."]))
    # 2 of 3 found, nothing extra: precision 1, recall 2/3
    assert found["skills"] == pytest.approx(0.8)
    assert scores(with_(), with_(skills=["Kafka", "Python", "SQL"]))["skills"] == 1.0


@pytest.mark.parametrize(("candidate", "expected"), [(104_000, 1.0), (106_000, 0.0)])
def test_a_number_agrees_within_five_per_cent(candidate: float, expected: float) -> None:
    salary = BASE["salary"] | {"max": candidate}
    assert scores(with_(), with_(salary=salary))["salary.max"] == expected


def test_years_are_exact() -> None:
    assert scores(with_(), with_(years_experience=6))["years_experience"] == 0.0


def test_free_text_is_token_overlap() -> None:
    found = scores(with_(), with_(summary="Senior Python engineer."))
    # 3 tokens shared of 6 and 3: precision 1, recall 1/2
    assert found["summary"] == pytest.approx(2 / 3, abs=1e-6)


def test_null_on_one_side_disagrees_and_on_both_agrees() -> None:
    found = scores(with_(), with_(salary=None))
    assert [found[f"salary.{k}"] for k in ("min", "max", "currency", "period")] == [0.0] * 4
    assert scores(with_(salary=None), with_(salary=None))["salary.min"] == 1.0
    assert scores(with_(years_experience=None), with_())["years_experience"] == 0.0
