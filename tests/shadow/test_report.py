"""The comparison report: intervals, rates, latency, cost and the projected saving."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pytest

from streams.enrichment import Enrichment
from streams.models import ShadowAnswer, ShadowResult, Usage
from streams.shadow.report import compare_report, interval
from streams.shadow.runner import sampled
from tests.shadow.test_compare import BASE


def result(
    job_id: str,
    *,
    seniority: float = 1.0,
    outcome: Literal["compared", "invalid", "failed", "dropped"] = "compared",
    cost: tuple[float, float] = (0.002, 0.0005),
    latency: tuple[float, float] = (100.0, 50.0),
) -> ShadowResult:
    answer = Enrichment.model_validate(BASE)
    production = ShadowAnswer(
        provider="openai",
        model="gpt-5.4-mini",
        enrichment=answer,
        usage=Usage(cost_usd=cost[0]),
        latency_ms=latency[0],
    )
    shadow = ShadowAnswer(
        provider="openai",
        model="gpt-5.4-nano",
        enrichment=answer if outcome == "compared" else None,
        usage=Usage(cost_usd=cost[1]),
        latency_ms=latency[1],
    )
    scores = {"seniority": seniority, "skills": 1.0}
    return ShadowResult(
        job_id=job_id,
        candidate="openai/gpt-5.4-nano",
        origin="live",
        outcome=outcome,
        sample=0.5,
        prompt_version="abc",
        production=production,
        shadow=None if outcome == "dropped" else shadow,
        scores=scores if outcome == "compared" else {},
        agreement=sum(scores.values()) / 2 if outcome == "compared" else None,
    )


def test_a_report_sums_one_candidate() -> None:
    results = [result(f"j{i}", seniority=0.0 if i < 20 else 1.0) for i in range(100)]
    results += [result("bad", outcome="invalid"), result("gone", outcome="dropped")]
    [report] = compare_report(results, enriched_per_day=1000)
    assert (report.jobs, report.compared, report.invalid, report.dropped) == (102, 100, 1, 1)
    assert report.invalid_rate == pytest.approx(1 / 101, abs=1e-4)
    seniority = report.fields["seniority"]
    assert seniority.mean == 0.8
    assert seniority.method == "wilson"
    assert seniority.low < 0.8 < seniority.high
    assert report.fields["skills"].mean == 1.0
    assert report.production.cost_per_1000_usd == pytest.approx(2.0)
    assert report.shadow.cost_per_1000_usd == pytest.approx(0.5)
    # (0.002 - 0.0005) per job, 1,000 jobs a day, 30 days
    assert report.projected_monthly_saving_usd == pytest.approx(45.0)
    assert report.production.latency_p50_ms == 100.0
    assert report.shadow.latency_p95_ms == 50.0


def test_a_job_compared_twice_counts_once() -> None:
    first = result("j1", seniority=0.0)
    again = result("j1").model_copy(update={"at": first.at + timedelta(seconds=1)})
    [report] = compare_report([first, again])
    assert report.compared == 1
    assert report.fields["seniority"].mean == 1.0


def test_graded_scores_get_a_normal_interval() -> None:
    found = interval([0.5, 0.7, 0.9, 0.6])
    assert found.method == "normal"
    assert found.low < found.mean < found.high


def test_sampling_is_by_job_id_and_nested() -> None:
    ids = [f"job-{i}" for i in range(10_000)]
    half = {i for i in ids if sampled(i, 0.5)}
    tenth = {i for i in ids if sampled(i, 0.1)}
    assert 4800 < len(half) < 5200
    assert tenth <= half
    assert all(sampled(i, 0.5) for i in half)  # the same answer every time
