"""Usage reports for ``llm-streams report``: per provider and day, calls by outcome, tokens,
cost and cache hits, and the part of the calls and cost that went through the batch lane.

By default the figures come from a worker's web view (``/reports/usage``, per provider or per
tenant), that is from the same tables the web view shows. ``from_ledger`` instead rebuilds
them from ``llm.calls`` at the current price table (``reprice``), so a corrected price
re-prices the past without re-running anything.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from typing import Any, Literal

import httpx
from pydantic import ValidationError

from streams.config.settings import Settings
from streams.errors import StreamsError
from streams.kafka.admin import read_to_end
from streams.kafka.framing import decoded
from streams.models import ProviderCall
from streams.observe import stats as st

__all__ = ["By", "Format", "from_ledger", "from_web_view", "render"]

Format = Literal["table", "json", "csv"]
By = Literal["provider", "tenant"]
COLUMNS = (
    "provider",  # or "tenant", by what the report is
    "day",
    "calls",
    "success",
    "failed",
    "rate_limited",
    "input_tokens",
    "cached_input_tokens",
    "output_tokens",
    "cost_usd",
    "prompt_cache_saved_usd",
    "cache_hits",
    "saved_usd",
    "batch_calls",
    "batch_cost_usd",
    "batch_saved_usd",
    "estimated_calls",
    "estimated_cost_usd",
    "shadow_calls",
    "shadow_cost_usd",
    "repaired",  # new columns go last: a CSV read by position keeps working
    "repaired_cost_usd",
    "success_cost_usd",
)


class ReportUnavailable(StreamsError):
    """No worker answered, or it answered with an error."""


def from_web_view(
    url: str, *, first: date, last: date, by: By = "provider", timeout_s: float = 30.0
) -> dict[str, Any]:
    try:
        response = httpx.get(
            f"{url.rstrip('/')}/reports/usage",
            params={"start": first.isoformat(), "end": last.isoformat(), "by": by},
            timeout=timeout_s,
            follow_redirects=True,
        )
    except httpx.HTTPError as exc:
        raise ReportUnavailable(f"no worker answered at {url}: {exc}") from None
    if response.status_code != 200:
        raise ReportUnavailable(f"{url} answered {response.status_code}: {response.text[:300]}")
    report: dict[str, Any] = response.json()
    return report


async def from_ledger(
    settings: Settings, *, first: date, last: date, by: By = "provider", reprice: bool = False
) -> dict[str, Any]:
    """The report rebuilt from ``llm.calls``, per provider or tenant; with ``reprice`` at
    ``settings.llm_prices`` (a call whose model has no price keeps the cost it was recorded
    with), else at the cost each call was recorded with."""
    days: dict[str, dict[str, st.Stats]] = {}
    for record in await read_to_end(settings.cluster(), settings.llm_topic_calls):
        try:
            call = decoded(ProviderCall, record.value)
        except ValidationError:
            continue  # not a call event; the stats agent skips it too
        day = st.day_of(call.at)
        if not first.isoformat() <= day <= last.isoformat():
            continue
        price = settings.llm_prices.get(call.model) if reprice else None
        if price is not None:
            usage = call.usage.priced(price, batch=call.batch_id is not None)
            call = call.model_copy(update={"usage": usage})
        by_day = days.setdefault(call.provider if by == "provider" else call.tenant, {})
        by_day[day] = st.add(by_day.get(day), call)
    report = st.usage_report(days, first=first, last=last, by=by)
    if reprice:
        report["price_version"] = settings.llm_price_version
    return report


def _by(report: dict[str, Any]) -> By:
    return "tenant" if report.get("tenants") is not None else "provider"


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    by = _by(report)
    for name, figures in report[f"{by}s"].items():
        for day, summary in figures["days"].items():
            outcomes = summary["outcomes"]
            out.append(
                {
                    by: name,
                    "day": day,
                    "calls": summary["calls"],
                    "success": outcomes.get("success", 0),
                    "failed": summary["calls"]
                    - outcomes.get("success", 0)
                    - outcomes.get("repaired", 0),
                    "rate_limited": outcomes.get("rate_limited", 0),
                    "input_tokens": summary["input_tokens"],
                    "cached_input_tokens": summary["cached_input_tokens"],
                    "output_tokens": summary["output_tokens"],
                    "cost_usd": summary["cost_usd"],
                    "prompt_cache_saved_usd": summary.get("prompt_cache_saved_usd", 0.0),
                    "cache_hits": summary.get("cache_hits", 0),
                    "saved_usd": summary.get("saved_usd", 0.0),
                    "batch_calls": summary.get("batch_calls", 0),
                    "batch_cost_usd": summary.get("batch_cost_usd", 0.0),
                    "batch_saved_usd": summary.get("batch_saved_usd", 0.0),
                    "estimated_calls": summary.get("estimated_calls", 0),
                    "estimated_cost_usd": summary.get("estimated_cost_usd", 0.0),
                    "shadow_calls": summary.get("shadow_calls", 0),
                    "shadow_cost_usd": summary.get("shadow_cost_usd", 0.0),
                    "repaired": outcomes.get("repaired", 0),
                    "repaired_cost_usd": summary["outcome_cost_usd"].get("repaired", 0.0),
                    "success_cost_usd": summary["outcome_cost_usd"].get("success", 0.0),
                }
            )
    return out


def render(report: dict[str, Any], *, format: Format) -> str:
    if format == "json":
        return json.dumps(report, indent=2, sort_keys=True)
    table = rows(report)
    columns = (_by(report), *COLUMNS[1:])
    if format == "csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(table)
        return buffer.getvalue().rstrip("\n")
    cells = [list(columns)] + [[_cell(row[c]) for c in columns] for row in table]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    # Names left, numbers right.
    lines = [
        "  ".join(
            value.ljust(width) if column < 2 else value.rjust(width)
            for column, (value, width) in enumerate(zip(line, widths, strict=True))
        )
        for line in cells
    ]
    period = f"{report['start']} .. {report['end']}"
    footer = f"{len(table)} rows, {period}" + (
        f", re-priced at {report['price_version']}" if "price_version" in report else ""
    )
    return "\n".join([*lines, footer])


def _cell(value: Any) -> str:
    return f"{value:.6f}" if isinstance(value, float) else str(value)
