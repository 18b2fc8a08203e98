"""A candidate's answers against the labels, field by field, by the rule each field's type
gives (``streams.shadow.compare``: exact, number within 5 %, set F1, text F1). An item the
candidate gave no valid answer for scores 0 on every labelled field: that is what its
consumers would get. Accuracy per field and overall (every labelled field of every item)
with a 95 % interval (``streams.shadow.report.interval``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streams.evals.records import CandidateScore, EvalAnswer
from streams.evals.sets import EvalItem
from streams.shadow.compare import field_rules, field_score, value_at
from streams.shadow.report import interval, percentile

__all__ = ["score"]


def score(
    candidate: str,
    prompt_version: str,
    items: Sequence[EvalItem],
    answers: Mapping[str, EvalAnswer],  # by item digest
) -> CandidateScore:
    by_field: dict[str, list[float]] = {}
    for item in items:
        answer = answers[item.digest]
        for path, expected in item.labels.items():
            got = value_at(answer.enrichment, path) if answer.enrichment is not None else None
            points = field_score(path, expected, got) if answer.outcome == "answered" else 0.0
            by_field.setdefault(path, []).append(points)
    given = [answers[item.digest] for item in items]
    answered = [a for a in given if a.outcome == "answered"]
    latencies = [a.latency_ms for a in answered]
    return CandidateScore(
        candidate=candidate,
        prompt_version=prompt_version,
        items=len(items),
        invalid_rate=round(sum(a.outcome == "invalid" for a in given) / len(given), 4),
        failure_rate=round(sum(a.outcome == "failed" for a in given) / len(given), 4),
        overall=interval([points for scores in by_field.values() for points in scores]),
        fields={path: interval(by_field[path]) for path in field_rules() if path in by_field},
        latency_p50_ms=percentile(latencies, 0.5),
        latency_p95_ms=percentile(latencies, 0.95),
        usd_per_1000=round(sum(a.usage.cost_usd for a in given) / len(given) * 1000, 6),
    )
