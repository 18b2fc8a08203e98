"""Evaluation runs as people read them (a table), as spreadsheets do (CSV), and a field's
accuracy across runs (the history)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from streams.evals.gate import OVERALL
from streams.evals.records import EvalRun
from streams.evals.run import Estimate
from streams.shadow.report import Interval

__all__ = ["render_csv", "render_estimates", "render_history", "render_table"]


def _interval(found: Interval | None) -> str:
    if found is None:
        return "-"
    return f"{found.mean:.3f} [{found.low:.3f}, {found.high:.3f}] n={found.n}"


def _number(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.6g}{unit}"


def render_estimates(estimates: Sequence[Estimate]) -> str:
    lines = []
    for e in estimates:
        way = "Batch API (batch rate)" if e.batch else "live calls"
        cost = "unknown (no price)" if e.cost_usd is None else f"${e.cost_usd:.4f}"
        lines.append(
            f"{e.contestant}: {e.to_pay} of {e.items} items to answer by {way}, estimated "
            f"{cost} (~{e.input_tokens} input, ~{e.output_tokens} output tokens)"
        )
    return "\n".join(lines)


def render_table(runs: Sequence[EvalRun]) -> str:
    blocks = []
    for run in runs:
        s = run.score
        lines = [
            f"{s.candidate} on {run.set_name} ({run.set_digest}), prompt {s.prompt_version}: "
            f"run {run.run_id}, {s.items} items, {run.paid} answered now",
            f"  invalid-answer rate {s.invalid_rate:g}, failure rate {s.failure_rate:g}",
            "  accuracy (mean [95% interval]):",
            f"    {OVERALL:<22} {_interval(s.overall)}",
            *(f"    {path:<22} {_interval(found)}" for path, found in s.fields.items()),
            f"  latency p50 {_number(s.latency_p50_ms, ' ms')}, "
            f"p95 {_number(s.latency_p95_ms, ' ms')}",
            f"  USD per 1,000 items {s.usd_per_1000:.6g}",
        ]
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_csv(runs: Sequence[EvalRun]) -> str:
    """One row per run and measure: run, candidate, prompt version, measure, mean, low,
    high, n."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["run", "candidate", "prompt_version", "measure", "mean", "low", "high", "n"])
    for run in runs:
        s = run.score
        head = [run.run_id, s.candidate, s.prompt_version]
        for name, found in {OVERALL: s.overall, **s.fields}.items():
            writer.writerow([*head, name, found.mean, found.low, found.high, found.n])
        for name, value in (
            ("invalid_rate", s.invalid_rate),
            ("failure_rate", s.failure_rate),
            ("latency_p50_ms", s.latency_p50_ms),
            ("latency_p95_ms", s.latency_p95_ms),
            ("usd_per_1000", s.usd_per_1000),
        ):
            writer.writerow([*head, name, value, "", "", s.items])
    return out.getvalue()


def render_history(runs: Sequence[EvalRun], *, field: str) -> str:
    """``field``'s accuracy in each run, oldest first."""
    if not runs:
        return "no evaluation runs yet"
    sets = [f"{run.set_name} ({run.set_digest})" for run in runs]
    width = max(len(name) for name in sets)
    lines = [f"{'at (UTC)':<16} {'run':<12} {'set':<{width}} {'prompt':<12} {field:<34} candidate"]
    for run, name in zip(runs, sets, strict=True):
        s = run.score
        found = s.overall if field == OVERALL else s.fields.get(field)
        lines.append(
            f"{run.at:%Y-%m-%d %H:%M} {run.run_id:<12} {name:<{width}} "
            f"{s.prompt_version:<12} {_interval(found):<34} {s.candidate}"
        )
    return "\n".join(lines)
