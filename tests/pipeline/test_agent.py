"""The enrich agent on a real broker, with the simulator behind real HTTP."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from devstack.harness import SimulatorThread
from streams.app import create_app
from streams.config.settings import Settings
from streams.deadline import Deadline
from streams.providers.base import EnrichRequest
from streams.providers.build import build_providers
from streams.routing.router import Routed, Router
from streams.schemas import contract_file
from streams.vocab import PROVIDER_NAMES
from tests.conftest import ROOT
from tests.eventually import eventually_async
from tests.kafka_helpers import (
    commit_rounds,
    committed,
    consume,
    end_offsets,
    job_record,
    produce,
)

pytestmark = pytest.mark.slow

SCHEMAS = ROOT / "schemas"


def _schema(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SCHEMAS / contract_file(name)).read_text())
    return loaded


async def _all_committed(settings: Settings) -> bool:
    bootstrap, topic = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    ends = await end_offsets(bootstrap, topic)
    done = await committed(bootstrap, settings.llm_app_id, topic)
    return all(done.get(p, 0) == end for p, end in ends.items() if end > 0)


async def test_jobs_and_malformed_records_all_end_somewhere(
    settings: Settings, sim: SimulatorThread
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    jobs: list[tuple[bytes | None, bytes]] = [job_record(f"job-{n}") for n in range(30)]
    malformed: list[tuple[bytes | None, bytes]] = [
        (b"undecodable", b"\xff\xfe\x00 not utf-8"),
        (b"not-json", b"{this is not json"),
        (None, b'{"job_id": "no-title", "description": "missing title"}'),
        (b"wrong-type", b'{"job_id": 7, "title": "x", "description": "y"}'),
        (b"extra", b'{"job_id": "e", "title": "x", "description": "y", "salary": 1}'),
        (b"nested", b"[" * 100_000 + b"]" * 100_000),
    ]
    app = await create_app(settings)
    async with app.running():
        await produce(bootstrap, settings.llm_topic_raw, jobs[:15] + malformed + jobs[15:])
        enriched = await consume(bootstrap, settings.llm_topic_enriched, count=len(jobs))
        dead = await consume(bootstrap, settings.llm_topic_dead_letter, count=len(malformed))
        calls = await consume(bootstrap, settings.llm_topic_calls, count=len(jobs))
        await eventually_async(lambda: _all_committed(settings), timeout_s=30)

    ids = Counter(json.loads(r.value)["job_id"] for r in enriched)
    assert ids == Counter(f"job-{n}" for n in range(30)), "every job enriched exactly once"
    for record in enriched:
        value = json.loads(record.value)
        jsonschema.validate(value, _schema("enriched-job"))
        assert record.key == value["job_id"].encode()
        assert value["attempts"][-1]["outcome"] == "success"

    assert len(dead) == len(malformed)
    letters = [json.loads(r.value) for r in dead]
    assert Counter(d["stage"] for d in letters) == {"decode": 3, "validate": 3}
    for letter in letters:
        jsonschema.validate(letter, _schema("dead-letter"))
        assert letter["error"]["message"], "a dead letter says what was wrong"
        assert letter["original"]["topic"] == settings.llm_topic_raw
    missing_title = next(d for d in letters if d["original"]["key"] is None)
    assert "title" in missing_title["error"]["message"]

    for record in calls:
        call = json.loads(record.value)
        jsonschema.validate(call, _schema("provider-call"))
        assert call["provider"] == "openai"
        assert record.key == call["job_id"].encode(), "an attempt is keyed by its job"


async def test_every_provider_failing_dead_letters_with_attempts(
    settings: Settings, sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={500: 1.0})
    sim.set_faults("deepseek", errors={503: 1.0})
    app = await create_app(settings)
    async with app.running():
        # An outage is waited out until the job's deadline, then the job is dead-lettered.
        await produce(
            settings.kafka_bootstrap_servers,
            settings.llm_topic_raw,
            [job_record("doomed", options={"deadline_ms": 2000})],
        )
        (record,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter, count=1
        )
    letter = json.loads(record.value)
    assert letter["stage"] == "enrich"
    assert letter["job_id"] == "doomed"
    assert record.key == b"doomed"
    providers = [(a["provider"], a["http_status"]) for a in letter["attempts"]]
    assert providers[:2] == [("openai", 500), ("openai", 500)], "retried, then fallback"
    assert set(providers) == {("openai", 500), ("deepseek", 503)}
    assert "deadline of 2s exceeded" in letter["error"]["message"]
    assert json.loads(letter["original"]["value"])["job_id"] == "doomed"


async def test_fallback_enriches_when_the_primary_is_down(
    settings: Settings, sim: SimulatorThread
) -> None:
    sim.set_faults("openai", errors={401: 1.0})
    app = await create_app(settings)
    async with app.running():
        await produce(
            settings.kafka_bootstrap_servers,
            settings.llm_topic_raw,
            [job_record(f"fb-{n}") for n in range(5)],
        )
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=5
        )
    for record in enriched:
        value = json.loads(record.value)
        assert value["provider"] == "deepseek"
        # a final error (auth) is not retried on the same provider
        assert [a["outcome"] for a in value["attempts"]] == ["error", "success"]


class ExplodingRouter(Router):
    """A router with a bug that fires for one job: what Faust would lose if it escaped."""

    async def enrich(self, request: EnrichRequest, *, deadline: Deadline) -> Routed:
        if request.job.job_id == "boom":
            raise RuntimeError("bug in the router")
        return await super().enrich(request, deadline=deadline)


async def test_an_unexpected_exception_costs_a_dead_letter_not_the_job(
    settings: Settings, sim: SimulatorThread
) -> None:
    router = ExplodingRouter(settings.routing(), build_providers(settings.provider))
    app = await create_app(settings, router=router)
    records = [job_record("before"), job_record("boom"), job_record("after")]
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, records)
        dead = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter, count=1
        )
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=2
        )
        await eventually_async(lambda: _all_committed(settings), timeout_s=30)
    (letter,) = [json.loads(r.value) for r in dead]
    assert letter["job_id"] == "boom"
    assert letter["stage"] == "enrich"
    assert letter["error"] == {"type": "RuntimeError", "message": "bug in the router"}
    assert {json.loads(r.value)["job_id"] for r in enriched} == {"before", "after"}


async def test_a_slow_job_holds_the_commit_not_the_others(
    settings: Settings, sim: SimulatorThread, tmp_path: Path
) -> None:
    """Faust with concurrency > 1 commits past in-flight records (#606). Here the records
    after a slow one finish first, and the committed offset must still wait for it."""
    sim.set_faults("openai", latency_ms=6000, match="Job slow:")
    bootstrap, topic = settings.kafka_bootstrap_servers, settings.llm_topic_raw
    app = await create_app(settings)
    records = [job_record("slow")] + [job_record(f"fast-{n}") for n in range(8)]
    async with app.running():
        # one partition for all of them: the key decides, so send them all with one key
        await produce(bootstrap, topic, [(b"same-partition", value) for _, value in records])
        fast = await consume(bootstrap, settings.llm_topic_enriched, count=8, timeout_s=5)
        assert "slow" not in {json.loads(r.value)["job_id"] for r in fast}
        # Faust commits several times while the slow job is in flight
        await commit_rounds(app, 3)
        offsets = await committed(bootstrap, settings.llm_app_id, topic)
        assert all(offset == 0 for offset in offsets.values()), offsets
        everything = await consume(bootstrap, settings.llm_topic_enriched, count=9)
        await eventually_async(lambda: _all_committed(settings), timeout_s=30)
    assert {json.loads(r.value)["job_id"] for r in everything} >= {"slow"}


@pytest.mark.parametrize("provider", PROVIDER_NAMES)
async def test_each_provider_alone_enriches_the_examples(
    settings: Settings, sim: SimulatorThread, provider: str
) -> None:
    settings = settings.model_copy(update={"llm_provider_chain": [provider]})
    examples = (ROOT / "examples" / "jobs.jsonl").read_text(encoding="utf-8").splitlines()
    records = [(json.loads(line)["job_id"].encode(), line.encode()) for line in examples]
    app = await create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, records)
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=len(records)
        )
    values = [json.loads(r.value) for r in enriched]
    assert {v["job_id"] for v in values} == {key.decode() for key, _ in records}
    assert {v["provider"] for v in values} == {provider}
    for value in values:
        jsonschema.validate(value, _schema("enriched-job"))


async def test_schema_invalid_output_on_every_attempt_is_dead_lettered(
    settings: Settings, sim: SimulatorThread
) -> None:
    sim.set_faults("openai", outputs={"schema_invalid": 1.0})
    sim.set_faults("deepseek", outputs={"schema_invalid": 1.0})
    app = await create_app(settings)
    async with app.running():
        await produce(
            settings.kafka_bootstrap_servers, settings.llm_topic_raw, [job_record("garbled")]
        )
        (record,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter, count=1
        )
    letter = json.loads(record.value)
    assert letter["stage"] == "enrich"
    outcomes = [(a["provider"], a["outcome"]) for a in letter["attempts"]]
    assert outcomes == [  # each answer, then its repair (told why), failed
        ("openai", "invalid_output"),
        ("openai", "invalid_output"),
        ("deepseek", "invalid_output"),
        ("deepseek", "invalid_output"),
    ]
    assert "Enrichment schema" in letter["attempts"][0]["error"]["message"]


async def test_a_429_storm_dead_letters_nothing_while_deadlines_allow(
    settings: Settings, sim: SimulatorThread
) -> None:
    for provider in ("openai", "deepseek"):
        sim.set_faults(provider, errors={429: 0.6}, retry_after_s=0.3)
    jobs = [job_record(f"storm-{n}") for n in range(40)]
    app = await create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, jobs)
        enriched = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=len(jobs)
        )
        await eventually_async(lambda: _all_committed(settings), timeout_s=30)
    assert len({json.loads(r.value)["job_id"] for r in enriched}) == len(jobs)
    assert await end_offsets(settings.kafka_bootstrap_servers, settings.llm_topic_dead_letter) in (
        {},
        {0: 0, 1: 0},
    ), "nothing dead-lettered"
    rate_limited = sum(
        a["outcome"] == "rate_limited" for r in enriched for a in json.loads(r.value)["attempts"]
    )
    assert rate_limited > 0, "the storm happened"


async def test_an_answer_that_takes_70_s_is_taken_within_a_longer_attempt_cap(
    settings: Settings, sim: SimulatorThread
) -> None:
    """A non-streaming generation sends nothing until it is done: only the attempt's cap
    and the job's deadline bound it, not a read timeout of the HTTP client."""
    settings = settings.model_copy(
        update={
            "llm_provider_chain": ["openai"],
            "llm_job_deadline_s": 150.0,
            "llm_attempt_timeout_s": 120.0,
        }
    )
    sim.set_faults("openai", latency_ms=70_000)
    async with (await create_app(settings)).running():
        await produce(
            settings.kafka_bootstrap_servers, settings.llm_topic_raw, [job_record("slow")]
        )
        (record,) = await consume(
            settings.kafka_bootstrap_servers, settings.llm_topic_enriched, count=1, timeout_s=120
        )
    value = json.loads(record.value)
    assert [a["outcome"] for a in value["attempts"]] == ["success"], "one call, paid once"
    assert value["attempts"][0]["latency_ms"] >= 70_000
    assert sim.requests()["openai"] == 1
