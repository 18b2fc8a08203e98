"""One job's page, read from the topics by key: over HTTP, from the CLI, and for a job no
worker has taken yet."""

from __future__ import annotations

import json

import httpx
import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app, job_lookup
from streams.config.settings import Settings
from streams.config.slices import KafkaCluster
from streams.kafka.admin import ensure_topic
from streams.observe.job import key_partition
from tests.conftest import run_cli
from tests.eventually import eventually_async
from tests.kafka_helpers import consume, job_record, produce

pytestmark = pytest.mark.slow

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_a_jobs_page_tells_where_it_ended_and_how(
    settings: Settings, worker_env: dict[str, str], sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={500: 1.0})
    sim.set_faults("deepseek", errors={401: 1.0}, match="Job doomed:")
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    app = await create_app(settings)
    url = f"http://127.0.0.1:{settings.llm_service_port}"
    async with app.running(), httpx.AsyncClient(base_url=url, timeout=30) as web:
        header = [("traceparent", f"00-{TRACE}-00f067aa0ba902b7-01".encode())]
        await produce(bootstrap, raw, [job_record("fell-back")], headers=header)
        await produce(
            bootstrap,
            raw,
            [job_record("doomed", options={"deadline_ms": 3000}, tenant="jobs-board")],
        )
        await consume(bootstrap, settings.llm_topic_enriched, count=1)
        await consume(bootstrap, settings.llm_topic_dead_letter, count=1)
        page = (await web.get("/jobs/fell-back")).json()
        unknown = await web.get("/jobs/never-sent")
        # openai's circuit is open by now: deepseek takes the job, and takes its time
        sim.set_faults("deepseek", latency_ms=3000, match="Job slow:")
        calls = sim.requests().get("deepseek", 0)
        await produce(bootstrap, raw, [job_record("slow")])
        await eventually_async(lambda: _more(sim, calls))
        slow = (await web.get("/jobs/slow")).json()
        job = {"job_id": "via-http", "title": "Engineer", "description": "Go."}
        assert (await web.post("/process", json={"job": job})).status_code == 200
        via_http = (await web.get("/jobs/via-http")).json()
        await consume(bootstrap, settings.llm_topic_enriched, count=2)
    assert page["state"] == "enriched", page
    assert page["tenant"] == "default"
    assert page["trace_id"] == TRACE, "tracing is off here: the producer's context passes on"
    assert [(a["provider"], a["outcome"]) for a in page["attempts"]] == [
        ("openai", "error"),
        ("openai", "error"),
        ("deepseek", "success"),
    ]
    (source, outcome) = page["lineage"]
    assert source.startswith(f"{raw}/")
    assert outcome.startswith(f"{settings.llm_topic_enriched}/")
    assert outcome.endswith(f"(from {source})")
    events = [e["event"] for e in page["timeline"]]
    assert events[0] == f"published to {source}"
    assert events[-1].startswith("enriched by deepseek")
    assert page["result"]["enrichment"]["summary"]
    assert slow["state"] == "in_flight", slow
    assert via_http["state"] == "answered", via_http
    assert via_http["lineage"] == []
    assert unknown.status_code == 404
    assert "never-sent" in unknown.json()["error"]["message"]

    printed = run_cli("job", "doomed", env=worker_env)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout.startswith("job doomed: dead-lettered\n")
    assert "tenant jobs-board\n" in printed.stdout
    assert "AuthenticationError" in printed.stdout
    as_json = json.loads(run_cli("job", "doomed", "--json", env=worker_env).stdout)
    assert as_json["dead_letter"]["stage"] == "enrich"
    assert run_cli("job", "never-sent", env=worker_env).returncode == 1


async def test_a_job_no_worker_has_taken_is_waiting_behind_the_ones_before_it(
    settings: Settings,
) -> None:
    bootstrap, raw = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    await ensure_topic(KafkaCluster.plaintext(bootstrap), raw, partitions=2)
    partition = key_partition("third", 2)
    records = [job_record(name) for name in ("first", "second", "third")]
    await produce(bootstrap, raw, records, partition=partition)
    report = await job_lookup(settings).find("third")
    assert report is not None
    assert report.state == "waiting"
    assert report.detail == f"no worker of group {settings.llm_app_id} is running"
    assert report.lineage == [f"{raw}/{partition}/2"]


async def _more(sim: SimulatorThread, than: int) -> bool:
    return sim.requests().get("deepseek", 0) > than
