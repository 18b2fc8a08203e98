"""A comparison as people read it (a table) and as spreadsheets do (CSV)."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from streams.shadow.report import CandidateReport, Interval

__all__ = ["render_csv", "render_table"]


def _interval(found: Interval | None) -> str:
    if found is None:
        return "-"
    return f"{found.mean:.3f} [{found.low:.3f}, {found.high:.3f}] {found.method}"


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}{unit}" if abs(value) >= 1000 else f"{value:.6g}{unit}"


def render_table(reports: Sequence[CandidateReport]) -> str:
    if not reports:
        return "no shadow results in the window (is LLM_SHADOW set?)"
    blocks = []
    for r in reports:
        lines = [
            f"candidate {r.candidate} against production {', '.join(r.production.models)}",
            f"  jobs sampled {r.jobs}: compared {r.compared}, invalid {r.invalid}, "
            f"failed {r.failed}, dropped {r.dropped}",
            f"  invalid-answer rate {_number(r.invalid_rate)}, "
            f"failure rate {_number(r.failure_rate)}",
            "  agreement (mean [95% interval] method):",
            f"    {'overall':<22} {_interval(r.overall)}",
            *(f"    {path:<22} {_interval(found)}" for path, found in r.fields.items()),
            f"  {'':<24}{'production':>16}{'candidate':>16}",
        ]
        for label, ours, theirs, unit in (
            ("latency p50", r.production.latency_p50_ms, r.shadow.latency_p50_ms, " ms"),
            ("latency p95", r.production.latency_p95_ms, r.shadow.latency_p95_ms, " ms"),
            ("USD per 1,000 jobs", r.production.cost_per_1000_usd, r.shadow.cost_per_1000_usd, ""),
        ):
            lines.append(f"  {label:<24}{_number(ours, unit):>16}{_number(theirs, unit):>16}")
        lines.append(
            f"  projected monthly saving {_number(r.projected_monthly_saving_usd)} USD "
            f"at {_number(r.enriched_per_day)} jobs a day "
            f"({r.first_at:%Y-%m-%d %H:%M} to {r.last_at:%Y-%m-%d %H:%M} UTC)"
        )
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def render_csv(reports: Sequence[CandidateReport]) -> str:
    """One row per candidate and measure: candidate, measure, production, candidate, low,
    high, n."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["candidate", "measure", "production", "candidate_value", "low", "high", "n"])
    for r in reports:
        for name, value in (
            ("jobs", r.jobs),
            ("compared", r.compared),
            ("invalid_rate", r.invalid_rate),
            ("failure_rate", r.failure_rate),
            ("dropped", r.dropped),
            ("projected_monthly_saving_usd", r.projected_monthly_saving_usd),
        ):
            writer.writerow([r.candidate, name, "", value, "", "", ""])
        agreements = {"overall": r.overall, **r.fields}
        for path, found in agreements.items():
            if found is not None:
                writer.writerow(
                    [
                        r.candidate,
                        f"agreement.{path}",
                        "",
                        found.mean,
                        found.low,
                        found.high,
                        found.n,
                    ]
                )
        for name, ours, theirs in (
            ("latency_p50_ms", r.production.latency_p50_ms, r.shadow.latency_p50_ms),
            ("latency_p95_ms", r.production.latency_p95_ms, r.shadow.latency_p95_ms),
            ("cost_per_1000_usd", r.production.cost_per_1000_usd, r.shadow.cost_per_1000_usd),
        ):
            writer.writerow([r.candidate, name, ours, theirs, "", "", ""])
    return out.getvalue()
