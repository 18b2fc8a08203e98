"""The web view over HTTP, served by real worker processes on the real broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from devstack.broker.launcher import free_port
from devstack.harness import SimulatorThread, worker_process
from streams.vocab import PROVIDER_NAMES
from tests.conftest import ROOT
from tests.eventually import eventually

pytestmark = pytest.mark.slow

TOKEN = "admin-token-for-tests"
SENTINEL = "sk-sentinel-web-0123456789"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def _produce_examples(env: dict[str, str]) -> int:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "streams", "produce", str(ROOT / "examples" / "jobs.jsonl")],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return int(result.stdout.split()[1])


def _wait_for_calls(url: str, calls: int, *, outcome: str | None = None) -> dict[str, Any]:
    """The totals once all providers together have counted ``calls`` calls (of ``outcome``,
    if given)."""

    def count(totals: dict[str, Any]) -> int:
        if outcome is None:
            return sum(t["calls"] for t in totals.values())
        return sum(t["outcomes"].get(outcome, 0) for t in totals.values())

    totals: dict[str, Any] = eventually(
        lambda: httpx.get(f"{url}/statistics").json()["totals"],
        lambda totals: count(totals) == calls,
        timeout_s=60,
        what=f"{calls} calls counted",
    )
    return totals


@pytest.fixture
def web_env(worker_env: dict[str, str]) -> dict[str, str]:
    return worker_env | {
        "LLM_SERVICE_ADMIN_TOKEN": TOKEN,
        "LLM_PROVIDER_CHAIN": "openai,deepseek",
        "OPENAI_API_KEY": worker_env["OPENAI_API_KEY"],
    }


@pytest.fixture
def worker(web_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    with worker_process(web_env, tmp_path / "worker.log"):
        yield f"http://127.0.0.1:{web_env['LLM_SERVICE_PORT']}"


def test_every_read_endpoint_answers_with_the_figures(
    worker: str, web_env: dict[str, str], sim: SimulatorThread
) -> None:
    jobs = _produce_examples(web_env)
    totals = _wait_for_calls(worker, jobs)
    by_openai = jobs - 1  # one example prefers deepseek
    assert totals["openai"]["outcomes"] == {"success": by_openai}
    assert totals["deepseek"]["outcomes"] == {"success": 1}
    assert totals["openai"]["cost_usd"] > 0

    health = httpx.get(f"{worker}/health").json()
    assert health["status"] == health["service_status"] == "healthy"
    assert health["broker"]["connected"] is True
    assert health["memory"]["rss_mb"] > 10
    assert {"rss_mb", "vms_mb", "percent"} <= set(health["memory"])
    assert health["providers"]["openai"] == "healthy"
    assert all(lag == 0 for lag in health["consumer_lag"].values())

    status = httpx.get(f"{worker}/status").json()
    assert status["provider_chain"] == ["openai", "deepseek"]
    assert status["control_replayed"] is True
    assert status["repost_cache"] == {"enabled": True, "entries": jobs, "replayed": True}

    stats = httpx.get(f"{worker}/statistics", params={"minutes": 5}).json()
    assert sum(m["calls"] for m in stats["per_minute"]["openai"]) == by_openai

    providers = httpx.get(f"{worker}/providers").json()["providers"]
    assert [p["name"] for p in providers] == list(PROVIDER_NAMES)
    one = httpx.get(f"{worker}/providers/openai").json()
    assert one["totals"]["calls"] == by_openai
    assert one["circuit"]["state"] == "closed"
    unknown = httpx.get(f"{worker}/providers/nobody")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "name"
    assert httpx.get(f"{worker}/providers/openai/health").json()["active"]["ok"] is True

    today = datetime.now(UTC).date().isoformat()
    report = httpx.get(f"{worker}/reports/usage", params={"start": today, "end": today}).json()
    assert report["providers"]["openai"]["days"][today]["calls"] == by_openai
    posted = httpx.post(f"{worker}/reports/usage", json={"start": today, "end": today})
    assert posted.status_code == 200
    assert posted.json() == report
    backwards = httpx.get(f"{worker}/reports/usage", params={"start": today, "end": "2020-01-01"})
    assert backwards.status_code == 422

    families = {
        f.name: f for f in text_string_to_metric_families(httpx.get(f"{worker}/metrics").text)
    }
    calls = families["llm_provider_calls"]
    assert any(
        s.labels == {"provider": "openai", "outcome": "success"} and s.value == by_openai
        for s in calls.samples
    )
    assert "llm_provider_latency_seconds" in families
    assert "llm_provider_circuit_state" in families


def test_config_is_redacted_and_state_changes_need_the_token(
    web_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    env = web_env | {"ANTHROPIC_API_KEY": SENTINEL}  # not in the chain
    with worker_process(env, tmp_path / "worker.log"):
        url = f"http://127.0.0.1:{env['LLM_SERVICE_PORT']}"
        config = httpx.get(f"{url}/config")
        assert SENTINEL not in config.text
        assert config.json()["settings"]["anthropic_api_key"] == "**********"

        assert httpx.post(f"{url}/providers/openai/disable").status_code == 401
        wrong = httpx.post(
            f"{url}/providers/openai/disable", headers={"Authorization": "Bearer no"}
        )
        assert wrong.status_code == 401
        bad_patch = httpx.post(
            f"{url}/config/update", headers=ADMIN, json={"LLM_JOB_DEADLINE_S": -1}
        )
        assert bad_patch.status_code == 422
        assert bad_patch.json()["error"]["field"] == "LLM_JOB_DEADLINE_S"
        accepted = httpx.post(f"{url}/providers/openai/disable", headers=ADMIN)
        assert accepted.status_code == 202

        eventually(
            lambda: httpx.get(f"{url}/providers/openai").json(),
            lambda provider: not provider["enabled"],
            what="openai disabled",
        )
        done = httpx.post(f"{url}/process", json={"prompt": "Senior Go developer. Remote."})
        assert done.status_code == 200
        assert done.json()["provider"] == "deepseek"
        assert SENTINEL not in (tmp_path / "worker.log").read_text()


def test_without_a_token_state_changes_are_refused_with_how_to_enable_them(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    with worker_process(worker_env, tmp_path / "worker.log"):
        url = f"http://127.0.0.1:{worker_env['LLM_SERVICE_PORT']}"
        refused = httpx.post(f"{url}/statistics/reset")
        assert refused.status_code == 403
        assert "LLM_SERVICE_ADMIN_TOKEN" in refused.json()["error"]["message"]
        assert httpx.get(f"{url}/router/").status_code == 404, "Faust's table routes are off"
        assert httpx.get(f"{url}/table/").status_code == 404


def test_process_validates_and_counts_in_the_stats(worker: str, sim: SimulatorThread) -> None:
    job = {"job_id": "sync-1", "title": "Staff Data Engineer", "description": "Spark, 8 years."}
    one = httpx.post(f"{worker}/process", json={"job": job, "max_tokens": 512})
    assert one.status_code == 200
    assert one.json()["enrichment"]["seniority"] == "principal"
    missing = httpx.post(f"{worker}/process", json={"job": {"job_id": "x", "title": "t"}})
    assert missing.status_code == 422
    assert missing.json()["error"]["field"] == "job.description"
    both = httpx.post(f"{worker}/process", json={"job": job, "prompt": "p"})
    assert both.status_code == 422
    assert httpx.post(f"{worker}/process", content=b"{nope").status_code == 400
    batch = httpx.post(
        f"{worker}/process/batch",
        json={"items": [{"prompt": f"Junior designer {n}. Figma."} for n in range(5)]},
    )
    assert [r["ok"] for r in batch.json()["results"]] == [True] * 5
    too_many = httpx.post(f"{worker}/process/batch", json={"items": [{"prompt": "x"}] * 51})
    assert too_many.status_code == 422
    _wait_for_calls(worker, 6)


def test_the_seed_services_requests_are_answered_like_the_native_ones(
    worker: str, sim: SimulatorThread
) -> None:
    """Clients of the service this one replaces keep working: its shapes, answered 200."""
    job = {"job_id": "seed-1", "title": "Backend Engineer", "description": "Go, Postgres."}
    native = httpx.post(f"{worker}/process", json={"job": job})
    bare = httpx.post(f"{worker}/process", json=job)
    assert native.status_code == bare.status_code == 200
    assert bare.json()["enrichment"] == native.json()["enrichment"]
    assert bare.json()["cached"], "the same job: served from the repost cache"

    prompt = {"prompt": "Senior Go developer. Remote.", "max_tokens": 512}
    items = httpx.post(f"{worker}/process/batch", json={"items": [prompt, job]})
    requests = httpx.post(f"{worker}/process/batch", json={"requests": [prompt, job]})
    bare_list = httpx.post(f"{worker}/process/batch", json=[prompt, job])
    answers = [r.json()["results"] for r in (items, requests, bare_list)]
    assert [r.status_code for r in (items, requests, bare_list)] == [200, 200, 200]
    assert {len(a) for a in answers} == {2}
    assert all(a[1]["enrichment"] == native.json()["enrichment"] for a in answers)

    today = datetime.now(UTC).date().isoformat()
    native_range = {"start": today, "end": today}
    seed_range = {"start_date": f"{today}T00:00:00", "end_date": f"{today}T23:59:59Z"}
    # the calls above reach the statistics a moment later
    _, seed_report = eventually(
        lambda: (
            httpx.post(f"{worker}/reports/usage", json=native_range),
            httpx.post(f"{worker}/reports/usage", json=seed_range),
        ),
        lambda reports: reports[0].json() == reports[1].json(),
        timeout_s=10,
        what="the seed's usage report equal to the native one",
    )
    assert seed_report.status_code == 200

    health = httpx.get(f"{worker}/health")
    seed = health.json()
    assert health.status_code == 200
    assert seed["status"] in ("healthy", "degraded")
    assert seed["total_providers"] == len(PROVIDER_NAMES)
    assert seed["enabled_providers"] == len(PROVIDER_NAMES)
    assert seed["total_requests"] >= 7
    assert seed["uptime"] > 0
    assert {"rss", "vms", "percent"} <= set(seed["memory_usage"])
    assert datetime.fromisoformat(seed["timestamp"])

    redoc = httpx.get(f"{worker}/redoc")
    assert redoc.status_code == 200
    assert "/openapi.json" in redoc.text
    script = httpx.get(f"{worker}/redoc.standalone.js")
    assert script.status_code == 200
    assert len(script.content) > 100_000, "the whole ReDoc bundle, from this worker"


def test_stats_survive_a_restart_and_agree_across_two_workers(
    web_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    with worker_process(web_env, tmp_path / "first.log"):
        first = f"http://127.0.0.1:{web_env['LLM_SERVICE_PORT']}"
        jobs = _produce_examples(web_env)
        before = _wait_for_calls(first, jobs)

    second_env = web_env | {
        "LLM_SERVICE_PORT": str(free_port()),
        "LLM_DATA_DIR": str(tmp_path / "w2"),
    }
    with (
        worker_process(web_env, tmp_path / "restarted.log"),
        worker_process(second_env, tmp_path / "second.log"),
    ):
        urls = [f"http://127.0.0.1:{e['LLM_SERVICE_PORT']}" for e in (web_env, second_env)]
        for url in urls:
            after = _wait_for_calls(url, jobs)
            assert after == before, "recovered exactly from the changelog"
        answers = [
            json.dumps(httpx.get(f"{u}/statistics").json()["totals"], sort_keys=True) for u in urls
        ]
        assert answers[0] == answers[1], "the same figures whichever worker answers"
