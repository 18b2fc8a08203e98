"""streams.client against a worker process on the real broker."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

from devstack.harness import SimulatorThread, worker_process
from streams.client import JobFailed, JobsClient
from streams.config.settings import load_settings
from streams.enrichment import ENRICHMENT_VERSION
from streams.models import DeadLetter, EnrichedJobRecord, RawJob

pytestmark = pytest.mark.slow


def _client(env: dict[str, str]) -> JobsClient:
    return JobsClient(
        bootstrap=env["KAFKA_BOOTSTRAP_SERVERS"],
        raw_topic=env["LLM_TOPIC_RAW"],
        enriched_topic=env["LLM_TOPIC_ENRICHED"],
        dead_letter_topic=env["LLM_TOPIC_DEAD_LETTER"],
    )


def _job(job_id: str) -> RawJob:
    return RawJob(job_id=job_id, title="Platform Engineer", description=f"{job_id}: Terraform.")


async def test_publish_results_and_request_reply(
    worker_env: dict[str, str], tmp_path: Path, sim: SimulatorThread
) -> None:
    with worker_process(worker_env, tmp_path / "worker.log"):
        async with _client(worker_env) as jobs:
            acknowledged: list[int] = []
            assert (
                await jobs.publish([_job(f"c{n}") for n in range(3)], progress=acknowledged.append)
                == 3
            )
            assert acknowledged == [1, 2, 3]

            reply = await jobs.enrich(_job("asked"), timeout=30)
            assert isinstance(reply, EnrichedJobRecord)
            assert reply.schema_version == ENRICHMENT_VERSION
            assert reply.job_id == "asked"

            seen: list[EnrichedJobRecord | DeadLetter] = []
            results = jobs.results(group="client-test", from_beginning=True)
            async with contextlib.aclosing(results):
                async for result in results:
                    seen.append(result)
                    if len(seen) == 4:
                        break
            assert {r.job_id for r in seen} == {"c0", "c1", "c2", "asked"}
            await jobs.publish(_job("later"))
            again = jobs.results(group="client-test", from_beginning=True)
            async with contextlib.aclosing(again):
                async for result in again:
                    assert result.job_id == "later", "what was taken before is committed"
                    break

            for provider in ("openai", "deepseek"):
                sim.set_faults(provider, errors={401: 1.0})
            with pytest.raises(JobFailed, match="failed at enrich") as failed:
                await jobs.enrich(_job("doomed"), timeout=30)
            assert failed.value.letter.job_id == "doomed"


async def test_the_client_connects_as_the_worker_does_over_sasl_ssl(
    cluster_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the three-broker SASL_SSL cluster, with the client given the same settings'
    cluster (a consumer group named after the app id, as its ACLs allow)."""
    for name, value in cluster_env.items():
        monkeypatch.setenv(name, value)
    cluster = load_settings().cluster()
    client = JobsClient(
        cluster=cluster,
        raw_topic=cluster_env["LLM_TOPIC_RAW"],
        enriched_topic=cluster_env["LLM_TOPIC_ENRICHED"],
        dead_letter_topic=cluster_env["LLM_TOPIC_DEAD_LETTER"],
    )
    with worker_process(cluster_env, tmp_path / "worker.log"):
        async with client as jobs:
            assert await jobs.publish([_job("s0"), _job("s1")]) == 2
            reply = await jobs.enrich(_job("s-asked"), timeout=60)
            assert reply.job_id == "s-asked"
            seen: set[str] = set()
            results = jobs.results(group=f"{cluster_env['LLM_APP_ID']}-client", from_beginning=True)
            async with contextlib.aclosing(results):
                async for result in results:
                    seen.add(str(result.job_id))
                    if len(seen) == 3:
                        break
    assert seen == {"s0", "s1", "s-asked"}
