"""A real model's answers, counted: valid at first try, valid after repair, invalid; before
and after Enrichment schema version 2.

    .venv/bin/python -m bench.real_model [--gguf PATH] [--max-tokens 512] [--parallel 2]
                                         [--no-repair]

Twenty postings (none of them in the tests) go through the router to llama.cpp's server
(``devstack.local_model``: SmolLM2-135M-Instruct unless ``--gguf``) as the ``compatible``
provider alone, twice in one run: before the schema change (version 1's schema sent, answers
held to version 1) and after (version 2's schema with the keywords llama.cpp's grammar
enforces, answers held to all of version 2). Reports, per run, how many answers were valid at
the first try, valid after one repair (an invalid answer told what was wrong; a truncated one
given twice the room), and invalid; why first answers failed (truncated, invalid under the
contract); latency p50/p95 per job; output tokens per second of the server's own counts; and
the tokens the repairs cost. The router is given the server's slots as its concurrency and no
circuit breaker, so it measures the model rather than the queue.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import percentile
from devstack.local_model import MODEL_NAME, LocalModel
from streams.config.settings import load_settings
from streams.deadline import Deadline
from streams.enrichment import Enrichment, EnrichmentV1
from streams.errors import EnrichmentFailed, InvalidOutput
from streams.models import Attempt, RawJob
from streams.providers.base import EnrichRequest
from streams.providers.build import build_providers
from streams.providers.compatible import CompatibleProvider
from streams.routing.router import Router
from streams.schemas import enrichment_schema

POSTINGS = [
    (
        "Backend Engineer (Go)",
        "Build payment APIs in Go and PostgreSQL. 4+ years. Remote, EU time zones. EUR 70-85k.",
    ),
    (
        "Staff Machine Learning Engineer",
        "Ranking models in Python and PyTorch; 8 years. San Francisco, hybrid. USD 220-260k.",
    ),
    (
        "Customer Support Specialist",
        "Answer tickets in English and German. Zendesk. Full-time, on-site in Vienna.",
    ),
    (
        "Junior Accountant",
        "Bookkeeping and month-end close, Excel. Graduate welcome. Lisbon, EUR 1,600 per month.",
    ),
    (
        "DevOps Engineer",
        "Kubernetes, Terraform and AWS; on-call. 3+ years. Hybrid, Warsaw, PLN 18-24k monthly.",
    ),
    (
        "UX Researcher",
        "Plan and run interviews and usability tests; Figma. Remote (UK). GBP 55k-65k.",
    ),
    (
        "Head of Sales, DACH",
        "Build a team of eight account executives, Salesforce, 10 years in SaaS sales. Munich.",
    ),
    (
        "Data Analyst Intern",
        "SQL and dashboards for the marketing team, six months. Stockholm, SEK 20,000 per month.",
    ),
    (
        "Android Developer",
        "Kotlin, Jetpack Compose, 2 years shipping apps. On-site in Bangalore, INR 18-24 lakh.",
    ),
    (
        "Warehouse Shift Supervisor",
        "Lead 20 pickers on night shifts, forklift licence, logistics experience. Rotterdam.",
    ),
    (
        "Security Engineer",
        "Threat modelling, penetration testing, Rust a plus. Remote in Canada, CAD 140k-170k.",
    ),
    (
        "Content Marketing Manager",
        "SEO, editorial calendar, 5 years in B2B content. Hybrid in Dublin.",
    ),
    (
        "Site Reliability Engineer",
        "SLOs, Prometheus, Go or Python; 6+ years. Zurich, CHF 140,000-165,000.",
    ),
    (
        "Product Owner, Mobile",
        "Own the backlog of the banking app, Scrum, 4 years as a product owner. Paris, hybrid.",
    ),
    ("Recruiter (Tech)", "Source engineers, run interviews, HR tools. 2 years. Berlin, on-site."),
    ("Financial Controller", "IFRS reporting, budgeting, SAP. 7 years. Milan, EUR 60-75k."),
    (
        "Frontend Engineer (Vue)",
        "Vue 3, TypeScript, accessibility. Mid-level. Remote, Spain. EUR 45-55k.",
    ),
    (
        "Principal Data Architect",
        "A lakehouse on GCP with Spark and Kafka; 12 years. Singapore, SGD 15-18k a month.",
    ),
    (
        "Operations Coordinator",
        "Scheduling, vendor management, Excel; entry level. Austin, Texas, USD 22 per hour.",
    ),
    (
        "Embedded Software Engineer",
        "C and C++ on ARM microcontrollers, RTOS. 5 years. Eindhoven, hybrid.",
    ),
]


class BeforeVersion2(CompatibleProvider):
    """The compatible provider as it was before Enrichment version 2: version 1's schema
    sent, and an answer valid under version 1 taken."""

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        path, body = super().build(request, model)
        body["response_format"]["json_schema"]["schema"] = enrichment_schema(EnrichmentV1)
        return path, body

    def _validate(self, text: str | None, *, status: int) -> Enrichment:
        try:
            return super()._validate(text, status=status)
        except InvalidOutput:
            if text is None or not _valid_v1(text):
                raise
            return Enrichment.model_construct(**json.loads(text))


def _valid_v1(text: str) -> bool:
    try:
        EnrichmentV1.model_validate_json(text)
    except ValueError:
        return False
    return True


def jobs() -> list[RawJob]:
    return [
        RawJob(job_id=f"bench-real-{n}", title=title, description=text)
        for n, (title, text) in enumerate(POSTINGS)
    ]


def why(attempt: Attempt) -> str:
    message = attempt.error.message if attempt.error else ""
    for reason in ("truncated", "schema"):
        if reason in message:
            return reason
    return attempt.outcome


async def run(
    url: str, *, contract: int, repair: bool, max_tokens: int, parallel: int
) -> dict[str, Any]:
    settings = load_settings(
        compatible_base_url=url,
        compatible_model=MODEL_NAME,
        llm_provider_chain=["compatible"],
        llm_repair=repair,
        llm_max_output_tokens=max_tokens,
        llm_job_deadline_s=300,
        llm_attempt_timeout_s=120,
        llm_retry_attempts=1,
        llm_breaker_failures=1000,
        llm_breaker_window=10_000,
        llm_topic_partitions=1,
        llm_provider_limits={"compatible": {"concurrency": parallel}},
        llm_data_dir=Path(tempfile.mkdtemp(prefix="bench-real-")),
    )
    providers = build_providers(settings.provider)
    if contract == 1:
        providers["compatible"] = BeforeVersion2(settings.provider("compatible"))
    router = Router(settings.routing(), providers)
    counts = {"first_try": 0, "after_repair": 0, "invalid": 0}
    latencies: list[float] = []
    attempts: list[Attempt] = []
    first_failed: Counter[str] = Counter()
    started = time.monotonic()

    async def one(job: RawJob) -> None:
        began = time.monotonic()
        try:
            routed = await router.enrich(router.request_for(job), deadline=Deadline.after(300))
            made = routed.attempts
            counts["after_repair" if made[-1].outcome == "repaired" else "first_try"] += 1
        except EnrichmentFailed as exc:
            made = exc.attempts
            counts["invalid"] += 1
        latencies.append((time.monotonic() - began) * 1000)
        attempts.extend(made)
        if made[0].outcome != "success":
            first_failed[why(made[0])] += 1

    await asyncio.gather(*(one(job) for job in jobs()))
    seconds = time.monotonic() - started
    for provider in providers.values():
        await provider.aclose()
    output = sum(a.usage.output_tokens for a in attempts)
    repair_tokens = sum(a.usage.output_tokens for a in attempts if a.attempt > 1)
    return {
        "contract": contract,
        "repair": repair,
        "jobs": len(POSTINGS),
        **counts,
        "first_answers_failed": dict(first_failed),
        "calls": len(attempts),
        "outcomes": dict(Counter(a.outcome for a in attempts)),
        "job_p50_ms": round(percentile(latencies, 50)),
        "job_p95_ms": round(percentile(latencies, 95)),
        "output_tokens": output,
        "output_tokens_per_s": round(output / seconds, 1),
        "repair_output_tokens": repair_tokens,
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--gguf", type=Path, default=None, help="default: SmolLM2-135M-Instruct")
    parser.add_argument("--max-tokens", type=int, default=512)
    parser.add_argument("--parallel", type=int, default=2, help="the server's slots")
    parser.add_argument("--no-repair", dest="repair", action="store_false")
    args = parser.parse_args()
    log = Path(tempfile.mkdtemp(prefix="bench-model-")) / "model.log"
    with LocalModel(log=log, gguf=args.gguf, parallel=args.parallel) as model:
        for contract in (1, 2):
            row = asyncio.run(
                run(
                    model.url,
                    contract=contract,
                    repair=args.repair,
                    max_tokens=args.max_tokens,
                    parallel=args.parallel,
                )
            )
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
