"""The dashboard in a real headless browser (Debian's chromium), and the API documents."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest
from openapi_spec_validator import validate

from devstack.harness import SimulatorThread, worker_process
from streams.web.openapi import document
from tests.conftest import ROOT
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
    env = worker_env | {"LLM_SERVICE_ADMIN_TOKEN": "t"}
    with worker_process(env, tmp_path / "worker.log"):
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        jobs = _produce_examples(env)
        _wait_for_calls(url, jobs, outcome="success")
        assert httpx.get(f"{url}/docs").status_code == 200
        dom = _browse(f"{url}/", tmp_path / "profile-dom", "--dump-dom")
        ARTIFACTS.mkdir(exist_ok=True)
        shot = _browse(
            f"{url}/", tmp_path / "profile-shot", f"--screenshot={ARTIFACTS / 'dashboard.png'}"
        )
    page = dom.stdout
    assert 'data-ready="true"' in page, dom.stderr[-2000:]
    assert re.search(r'<div id="errors"></div>', page), "the page reported an error"
    for chart in ("success", "latency", "throughput", "cost"):
        points = re.search(rf'id="chart-{chart}"[^>]*data-points="(\d+)"', page)
        assert points is not None, f"chart {chart} was not drawn"
        assert int(points.group(1)) > 0, f"chart {chart} has no data"
    assert page.count('data-provider="') == 5
    assert "ProviderUnavailable" in page, "recent failures show their reasons"
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line and "Uncaught" in line]
    assert console == []
    assert (ARTIFACTS / "dashboard.png").stat().st_size > 10_000, shot.stderr[-2000:]
