"""The gate a CI job puts before a prompt or model change: each required field at or above
its bar, and, against a baseline run, no field fallen by more than its interval."""

from __future__ import annotations

from collections.abc import Mapping

from streams.evals.records import CandidateScore
from streams.shadow.report import Interval

__all__ = ["OVERALL", "failures", "parse_requirement"]

OVERALL = "overall"


def parse_requirement(text: str) -> tuple[str, float]:
    """``seniority=0.85`` as (field, bar); ValueError saying what is wrong."""
    field, sep, bar = text.partition("=")
    try:
        value = float(bar)
    except ValueError:
        value = -1.0
    if not sep or not field or not 0 <= value <= 1:
        raise ValueError(f"{text!r}: FIELD=ACCURACY with an accuracy from 0 to 1")
    return field.strip(), value


def failures(
    run: CandidateScore,
    *,
    required: Mapping[str, float],
    baseline: CandidateScore | None = None,
) -> list[str]:
    """What keeps ``run`` out, one line each (none: it passes)."""
    found = {OVERALL: run.overall, **run.fields}
    said = []
    for field, bar in required.items():
        accuracy = found.get(field)
        if accuracy is None:
            said.append(f"{run.candidate}: {field}: no item labels it")
        elif accuracy.mean < bar:
            said.append(f"{run.candidate}: {field} {_said(accuracy)} is below {bar:g}")
    if baseline is not None:
        before = {OVERALL: baseline.overall, **baseline.fields}
        for field, now in found.items():
            then = before.get(field)
            if then is not None and then.mean - now.mean > (now.high - now.low) / 2:
                said.append(
                    f"{run.candidate}: {field} fell from {then.mean:.3f} to {_said(now)}, "
                    "by more than its interval"
                )
    return said


def _said(accuracy: Interval) -> str:
    return f"{accuracy.mean:.3f} [{accuracy.low:.3f}, {accuracy.high:.3f}]"
