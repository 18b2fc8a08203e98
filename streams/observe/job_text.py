"""A job's report as ``llm-streams job`` prints it for a person."""

from __future__ import annotations

from streams.observe.job import JobReport

__all__ = ["render_job"]

_STATES = {
    "waiting": "waiting for a worker",
    "in_flight": "in flight",
    "batch_lane": "in the batch lane",
    "enriched": "enriched",
    "dead_lettered": "dead-lettered",
    "answered": "answered over HTTP",
}


def render_job(report: JobReport) -> str:
    lines = [
        f"job {report.job_id}: {_STATES[report.state]}",
        f"  {report.detail}",
        f"tenant {report.tenant or '(not known yet)'}",
        f"trace  {report.trace_id or '(none)'}",
        "lineage",
        *(f"  {record}" for record in report.lineage),
    ]
    if report.attempts:
        lines.append("attempts")
        header = ("provider", "model", "try", "outcome", "latency", "tokens in/out", "cost")
        rows = [header] + [
            (
                a.provider + (f" ({a.lane})" if a.lane != "live" else ""),
                a.model,
                str(a.attempt),
                a.outcome + (f" {a.error_type}" if a.error_type else ""),
                f"{a.latency_ms:.0f} ms",
                f"{a.usage.input_tokens}/{a.usage.output_tokens}",
                f"${a.usage.cost_usd:.6f}" + (" est." if a.usage_estimated else ""),
            )
            for a in report.attempts
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines += [
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        ]
    lines.append("time line")
    first = report.timeline[0].at if report.timeline else None
    for event in report.timeline:
        offset = f"+{(event.at - first).total_seconds():.3f}s" if first else ""
        lines.append(f"  {event.at:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f" {offset:>10}  {event.event}")
    return "\n".join(lines)
