"""``llm-streams report`` against a worker process: the web view's figures, the same calls
per tenant, and re-pricing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from devstack.harness import worker_process
from streams.pricing import DEFAULT_PRICES
from tests.conftest import run_cli
from tests.eventually import eventually
from tests.kafka_helpers import job_record, produce

pytestmark = pytest.mark.slow


def _web_report(env: dict[str, str], day: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}/reports/usage"
    report: dict[str, Any] = httpx.get(url, params={"start": day, "end": day}).json()
    return report


def test_the_report_matches_the_web_view_and_a_price_change_reprices_it(
    worker_env: dict[str, str], tmp_path: Path
) -> None:
    env = worker_env
    today = datetime.now(UTC).date().isoformat()
    with worker_process(env, tmp_path / "worker.log"):
        bootstrap, raw = env["KAFKA_BOOTSTRAP_SERVERS"], env["LLM_TOPIC_RAW"]
        records = [job_record(f"rep-{n}", tenant="alpha") for n in range(3)]
        records.append(job_record("rep-3"))
        asyncio.run(produce(bootstrap, raw, records))
        asyncio.run(produce(bootstrap, raw, [job_record("rep-4")], headers=[("tenant", b"beta")]))
        web = eventually(
            lambda: _web_report(env, today),
            lambda web: web["providers"].get("openai", {}).get("total", {}).get("calls") == 5,
            timeout_s=60,
            what="5 openai calls in the report",
        )

        as_json = run_cli("report", "--from", today, "--to", today, "--format", "json", env=env)
        assert as_json.returncode == 0, as_json.stderr
        assert json.loads(as_json.stdout) == web, "the CLI shows the web view's figures"

        as_csv = run_cli("report", "--from", today, "--to", today, "--format", "csv", env=env)
        header, row = as_csv.stdout.splitlines()
        assert header.startswith("provider,day,calls,success,failed")
        assert row.startswith(f"openai,{today},5,5,0,")

        table = run_cli("report", "--from", today, "--to", today, env=env)
        print("\n" + table.stdout)

        by_tenant = run_cli(
            "report", "--from", today, "--to", today, "--by", "tenant", "--format", "json", env=env
        )
        assert by_tenant.returncode == 0, by_tenant.stderr
        tenant_csv = run_cli(
            "report", "--from", today, "--to", today, "--by", "tenant", "--format", "csv", env=env
        )
        statistics = httpx.get(f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}/statistics").json()
    tenants = {name: t["total"] for name, t in json.loads(by_tenant.stdout)["tenants"].items()}
    calls = {name: t["calls"] for name, t in tenants.items()}
    assert calls == {"alpha": 3, "beta": 1, "default": 1}
    assert {name: t["calls"] for name, t in statistics["tenants_today"].items()} == calls
    provider_cost = web["providers"]["openai"]["total"]["cost_usd"]
    # to the cent and well below: each figure is rounded to 6 decimals
    assert sum(t["cost_usd"] for t in tenants.values()) == pytest.approx(provider_cost, abs=5e-6)
    assert tenant_csv.stdout.splitlines()[0].startswith("tenant,day,calls,")
    from_ledger = run_cli(
        "report",
        "--from",
        today,
        "--to",
        today,
        "--by",
        "tenant",
        "--reprice",
        "--format",
        "json",
        env=env,
    )
    recounted = json.loads(from_ledger.stdout)["tenants"]
    assert {name: t["total"]["calls"] for name, t in recounted.items()} == calls

    cost = web["providers"]["openai"]["total"]["cost_usd"]
    assert cost > 0
    same_prices = run_cli(
        "report", "--from", today, "--to", today, "--format", "json", "--reprice", env=env
    )
    assert same_prices.returncode == 0, same_prices.stderr
    repriced = json.loads(same_prices.stdout)["providers"]["openai"]["total"]
    assert repriced["cost_usd"] == pytest.approx(cost, abs=1e-6)
    assert repriced["calls"] == 5

    doubled = {
        model: {k: v * 2 for k, v in price.model_dump(exclude_none=True).items()}
        for model, price in DEFAULT_PRICES.items()
    }
    new_prices = env | {"LLM_PRICES": json.dumps(doubled), "LLM_PRICE_VERSION": "corrected"}
    corrected = run_cli(
        "report", "--from", today, "--to", today, "--format", "json", "--reprice", env=new_prices
    )
    report = json.loads(corrected.stdout)
    assert report["price_version"] == "corrected"
    # Both figures are rounded to 6 decimals: twice a rounded cost is off by up to 1.5e-6.
    assert report["providers"]["openai"]["total"]["cost_usd"] == pytest.approx(2 * cost, abs=2e-6)


def test_the_report_says_when_no_worker_answers(worker_env: dict[str, str]) -> None:
    result = run_cli("report", "--from", "2026-01-01", "--to", "2026-01-02", env=worker_env)
    assert result.returncode == 1
    assert "no worker answered" in result.stderr


def test_the_report_refuses_a_backwards_range(worker_env: dict[str, str]) -> None:
    result = run_cli("report", "--from", "2026-01-02", "--to", "2026-01-01", env=worker_env)
    assert result.returncode == 2
    assert "--to is before --from" in result.stderr
