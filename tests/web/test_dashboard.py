"""The dashboard in a real headless browser (Debian's chromium), and the API documents."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from devstack.harness import SimulatorThread, worker_process
from streams.vocab import PROVIDER_NAMES
from streams.web.openapi import document
from tests.conftest import ROOT
from tests.eventually import eventually
from tests.kafka_helpers import produce
from tests.web.test_web import _produce_examples, _wait_for_calls

ARTIFACTS = ROOT / "artifacts"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--window-size=1400,1300",
    "--virtual-time-budget=10000",
    "--enable-logging=stderr",
    "--v=0",
]


def test_the_openapi_document_is_valid_and_covers_the_api() -> None:
    spec = document()
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    for path in (
        "/health",
        "/statistics",
        "/reports/usage",
        "/providers/{name}/disable",
        "/process",
    ):
        assert path in spec["paths"]
    assert "ProcessRequest" in spec["components"]["schemas"]


def _wait_for_jobs(url: str, *, received: int, out: int) -> dict[str, Any]:
    """``/jobs`` once the group has taken ``received`` jobs, finished ``out`` and committed,
    and the stats have counted the repost cache's hits (they follow the ledger)."""

    def settled(flow: dict[str, Any]) -> bool:
        totals = flow["totals"]
        done = totals["enriched"] + totals["dead_lettered"]
        finished = totals["received"] == received and done == out and flow["lag"]["total"] == 0
        return finished and bool(flow["repost_cache"]["hits"] > 0)

    flow: dict[str, Any] = eventually(
        lambda: httpx.get(f"{url}/jobs").json(),
        settled,
        timeout_s=60,
        every_s=0.5,
        what=f"jobs settled at {received} in, {out} out",
    )
    return flow


def _wait_for_shadow(url: str) -> dict[str, Any]:
    """``/shadow`` once a candidate has compared a job."""
    comparison: dict[str, Any] = eventually(
        lambda: httpx.get(f"{url}/shadow").json(),
        lambda found: found["candidates"] and found["candidates"][0]["compared"],
        timeout_s=60,
        every_s=0.5,
        what="a shadow comparison",
    )
    return comparison


def _chromium() -> str:
    found = shutil.which("chromium")
    if found is None:
        pytest.fail(
            "Debian's chromium is needed for the dashboard test: `make install` installs it "
            "when run as root (apt-get install chromium)",
            pytrace=False,
        )
    return found


def _browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *extra, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_dashboard_renders_charts_with_data_and_no_console_errors(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    sim.set_faults("openai", latency_ms=30, latency_jitter_ms=60, errors={500: 0.1})
    candidate = {"provider": "openai", "model": "gpt-5.4-nano", "sample": 1}
    env = worker_env | {
        "LLM_SERVICE_ADMIN_TOKEN": "t",
        "LLM_SHADOW": json.dumps([candidate]),
        "LLM_TENANTS": json.dumps({"bulk": {"daily_budget_usd": 5, "weight": 2}}),
    }
    with worker_process(env, tmp_path / "worker.log"):
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        empty = _browse(f"{url}/", tmp_path / "profile-empty", "--dump-dom").stdout
        jobs = _produce_examples(env)
        _wait_for_calls(url, jobs, outcome="success")
        asyncio.run(produce(env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"], [(b"x", b"{")]))
        _produce_examples(env)  # reposts: answered from the cache
        flow = _wait_for_jobs(url, received=2 * jobs + 1, out=2 * jobs + 1)
        assert flow["totals"] == {
            "received": 2 * jobs + 1,
            "enriched": 2 * jobs,
            "dead_lettered": 1,
        }
        assert sum(m["received"] for m in flow["per_minute"]) == 2 * jobs + 1
        assert sum(m["dead_letter_stages"].get("decode", 0) for m in flow["per_minute"]) == 1
        assert flow["recent_dead_letters"][0]["message"].startswith("not JSON")
        assert flow["repost_cache"]["hits"] > 0
        assert flow["repost_cache"]["saved_usd"] > 0
        assert httpx.get(f"{url}/docs").status_code == 200
        comparison = _wait_for_shadow(url)
        assert comparison["candidates"][0]["candidate"] == "openai/gpt-5.4-nano"
        dom = _browse(f"{url}/", tmp_path / "profile-dom", "--dump-dom")
        first_job = json.loads((ROOT / "examples" / "jobs.jsonl").read_text().splitlines()[0])
        job_page = _browse(
            f"{url}/?job={first_job['job_id']}", tmp_path / "profile-job", "--dump-dom"
        ).stdout
        ARTIFACTS.mkdir(exist_ok=True)
        shot = _browse(
            f"{url}/", tmp_path / "profile-shot", f"--screenshot={ARTIFACTS / 'dashboard.png'}"
        )
    page = dom.stdout
    assert 'data-ready="true"' in page, dom.stderr[-2000:]
    assert re.search(r'<div id="errors"></div>', page), "the page reported an error"
    for chart in ("jobs", "dead-letters", "success", "latency", "throughput", "cost"):
        points = re.search(rf'id="chart-{chart}"[^>]*data-points="(\d+)"', page)
        assert points is not None, f"chart {chart} was not drawn"
        assert int(points.group(1)) > 0, f"chart {chart} has no data"
        # A minute or two of data is drawn as lines, not as dots.
        segments = re.search(rf'id="chart-{chart}"[^>]*data-segments="(\d+)"', page)
        assert segments is not None
        assert int(segments.group(1)) > 0, f"chart {chart}: dots only"
        # Before any job, a chart of zeros has a readable axis, not one scaled to 1e-9.
        axis = re.search(rf'id="chart-{chart}"[^>]*data-axis="([^"]*)"', empty)
        assert axis is not None, empty[-3000:]
        assert axis.group(1) == "0 0.25 0.5 0.75 1", chart
    assert 'id="job" data-state="enriched"' in job_page, job_page[-3000:]
    assert "published to" in job_page
    assert page.count('data-provider="') == len(PROVIDER_NAMES)
    assert "ProviderUnavailable" in page, "recent failures show their reasons"
    assert re.search(r'data-stage="decode".*not JSON', page, re.S), "dead letters show reasons"
    assert "consumer lag" in page
    assert "saved by the repost cache" in page
    assert "saved by the Batch APIs" in page
    assert '<section id="shadow" hidden' in empty, "no candidate compared yet: no panel"
    assert '<section id="drift" hidden' in page, "too few answers to tell a drift: no panel"
    tenants = page[page.index('<section id="tenants"') : page.index('<section id="drift"')]
    assert re.search(r"<td>bulk</td><td[^>]*>2\.0</td>", tenants), "a configured tenant"
    assert re.search(r">5\.00</td><td[^>]*>5\.0000</td>", tenants), "its budget and what is left"
    shadow = page[page.index('<section id="shadow"') :]
    assert re.search(r"openai/gpt-5.4-nano against [^<]*openai/gpt-5.4-mini", shadow)
    assert re.search(r"seniority</td><td[^>]*>1\.000 \[", page), "agreement per field"
    assert "projected monthly saving" in page
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert console == []
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000, shot.stderr[-2000:]
