"""Scoring against labels: each field by its rule, an item without a valid answer wrong on
every labelled field, intervals that hold the rate; and the gate that reads them."""

from __future__ import annotations

from typing import Any

import pytest

from streams.evals.gate import failures, parse_requirement
from streams.evals.records import EvalAnswer
from streams.evals.score import score
from streams.evals.sets import EvalItem
from streams.models import RawJob, Usage
from tests.shadow.test_compare import BASE


def _item(n: int, **labels: Any) -> EvalItem:
    return EvalItem(job=RawJob(job_id=f"j{n}", title="t", description="d"), labels=labels)


def _answer(item: EvalItem, outcome: str = "answered", **changes: Any) -> EvalAnswer:
    return EvalAnswer(
        candidate="c",
        prompt_version="p",
        item=item.digest,
        job_id=item.job.job_id,
        outcome=outcome,
        enrichment=BASE | changes if outcome == "answered" else None,
        usage=Usage(cost_usd=0.002),
        latency_ms=100.0 * (int(item.job.job_id[1:]) + 1),
        batch=False,
    )


def test_each_field_is_scored_by_its_rule_and_a_failure_is_wrong_everywhere() -> None:
    items = [_item(n, seniority=BASE["seniority"], skills=BASE["skills"]) for n in range(10)]
    answers = {i.digest: _answer(i) for i in items[:7]}
    answers[items[7].digest] = _answer(items[7], seniority="unknown")  # one wrong field
    answers[items[8].digest] = _answer(items[8], "invalid")
    answers[items[9].digest] = _answer(items[9], "failed")
    found = score("c", "p", items, answers)
    assert found.fields["seniority"].mean == 0.7
    assert found.fields["seniority"].method == "wilson"
    assert found.fields["skills"].mean == 0.8
    assert (found.overall.mean, found.overall.n) == (0.75, 20)
    assert (found.invalid_rate, found.failure_rate) == (0.1, 0.1)
    assert found.usd_per_1000 == 2.0
    assert found.latency_p50_ms == 400.0, "over the valid answers only"
    low, high = found.fields["seniority"].low, found.fields["seniority"].high
    assert low < 0.7 < high
    assert high - low > 0.3, "ten items say little"


def test_a_labelled_null_is_right_only_when_the_answer_says_nothing_too() -> None:
    items = [_item(0, **{"salary.currency": None}), _item(1, **{"salary.currency": None})]
    answers = {
        items[0].digest: _answer(items[0], salary=None),
        items[1].digest: _answer(items[1]),  # BASE has a salary in EUR
    }
    assert score("c", "p", items, answers).fields["salary.currency"].mean == 0.5


def test_the_gate_names_each_field_below_its_bar_and_each_fallen_from_the_baseline() -> None:
    items = [
        _item(n, seniority=BASE["seniority"], remote_policy=BASE["remote_policy"])
        for n in range(40)
    ]
    good = score("c", "p", items, {i.digest: _answer(i) for i in items})
    worse = score(
        "c",
        "p",
        items,
        {
            i.digest: _answer(i, seniority="unknown") if n % 3 == 0 else _answer(i)
            for n, i in enumerate(items)
        },
    )
    assert failures(good, required={"seniority": 0.9, "overall": 0.9}) == []
    said = failures(
        worse, required={"seniority": 0.9, "remote_policy": 0.9, "years_experience": 0.5}
    )
    assert said == [
        "c: seniority 0.650 [0.495, 0.779] is below 0.9",
        "c: years_experience: no item labels it",
    ]
    fallen = failures(worse, required={}, baseline=good)
    assert [line.split(" fell")[0] for line in fallen] == ["c: overall", "c: seniority"]


@pytest.mark.parametrize("text", ["seniority", "seniority=high", "seniority=1.5", "=0.5"])
def test_a_requirement_must_be_a_field_and_an_accuracy(text: str) -> None:
    with pytest.raises(ValueError, match="FIELD=ACCURACY"):
        parse_requirement(text)
    assert parse_requirement("salary.currency=0.95") == ("salary.currency", 0.95)
