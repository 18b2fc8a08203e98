"""A real model through the whole pipeline: llama.cpp's server with SmolLM2-135M-Instruct as
the ``compatible`` provider, the simulator's OpenAI behind it. Every job ends enriched and
schema-valid: the model's truncated or invalid answers are failed attempts that are repaired
(asked again once, told why or given more room) or fall back, and every answer it gave
carries the server's own token counts."""

from __future__ import annotations

import json
import time
from typing import Any

import jsonschema
import pytest

from devstack.harness import SimulatorThread
from devstack.local_model import MODEL_NAME
from streams.app import create_app
from streams.config.settings import Settings
from streams.models import EnrichedJob
from streams.schemas import contract_file
from tests.conftest import ROOT
from tests.kafka_helpers import consume, produce

pytestmark = pytest.mark.slow

POSTINGS = [
    (
        "rm1",
        "Senior Data Engineer",
        "5+ years Python, Spark and SQL. Hybrid in Berlin. EUR 80-95k a year.",
    ),
    (
        "rm2",
        "Junior Frontend Developer",
        "React and TypeScript. Remote within the EU. 1 year of experience.",
    ),
    (
        "rm3",
        "Sales Manager",
        "Lead a team of five. Salesforce. On-site in London, GBP 60,000 per year.",
    ),
    ("rm4", "Warehouse Operations Lead", "Logistics and Excel. 3 years in a similar role. Madrid."),
    ("rm5", "Product Designer", "Figma, user research, design systems. Hybrid, Amsterdam."),
]


async def test_a_real_model_enriches_or_falls_back_and_reports_real_usage(
    settings: Settings, sim: SimulatorThread, local_model: str
) -> None:
    settings = settings.model_copy(
        update={
            "compatible_base_url": local_model,
            "compatible_model": MODEL_NAME,
            "llm_provider_chain": ["compatible", "openai"],
            "llm_provider_limits": Settings(
                llm_provider_limits={"compatible": {"concurrency": 2}}
            ).llm_provider_limits,
            "llm_job_deadline_s": 120.0,
            "llm_attempt_timeout_s": 60.0,
            "llm_max_output_tokens": 512,  # the tiny model rambles: truncated sooner
        }
    )
    records = [
        (
            job_id.encode(),
            json.dumps({"job_id": job_id, "title": title, "description": text}).encode(),
        )
        for job_id, title, text in POSTINGS
    ]
    started = time.monotonic()
    app = await create_app(settings)
    async with app.running():
        await produce(settings.kafka_bootstrap_servers, settings.llm_topic_raw, records)
        enriched = await consume(
            settings.kafka_bootstrap_servers,
            settings.llm_topic_enriched,
            count=len(records),
            timeout_s=300,  # 92 s alone on 2 cores; more beside other work
        )
    seconds = time.monotonic() - started
    schema = json.loads((ROOT / "schemas" / contract_file("enriched-job")).read_text())
    jobs = [EnrichedJob.model_validate_json(r.value) for r in enriched]
    for record in enriched:
        jsonschema.validate(json.loads(record.value), schema)
    assert sorted(j.job_id for j in jobs) == sorted(job_id for job_id, _, _ in POSTINGS)
    first = [j.attempts[0] for j in jobs]
    assert {a.provider for a in first} == {"compatible"}, "the real model is asked first"
    answered = [a for a in first if a.outcome in ("success", "invalid_output")]
    assert answered, "the model answered at least once"
    for attempt in answered:  # the server's own counts, not an estimate
        assert attempt.usage.input_tokens > 0
        assert attempt.usage.output_tokens > 0
    for job in jobs:
        if job.attempts[0].outcome != "success":  # repaired by the model, or fell back
            last = job.attempts[-1]
            assert (job.provider, last.outcome) in {
                ("compatible", "repaired"),
                ("openai", "success"),
            }
    _report(first, seconds)


def _report(first: list[Any], seconds: float) -> None:
    valid = [a for a in first if a.outcome == "success"]
    tokens = sum(a.usage.output_tokens for a in first)
    busy_s = sum(a.latency_ms for a in first) / 1000
    print(
        f"\n[real model] first try valid {len(valid)}/{len(first)}, outcomes "
        f"{[a.outcome for a in first]}, latency p50 "
        f"{sorted(a.latency_ms for a in first)[len(first) // 2]:.0f} ms, "
        f"{tokens} output tokens at {tokens / busy_s:.0f} tokens/s per call, run {seconds:.1f} s"
    )
