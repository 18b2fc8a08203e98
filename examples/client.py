"""Publish the example postings, enrich one more by request and reply, and print the results.

    make run                                   # a worker, a local broker and the simulator
    .venv/bin/python examples/client.py        # in another terminal

KAFKA_BOOTSTRAP_SERVERS picks another broker (default 127.0.0.1:9092).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from pathlib import Path

from streams.client import JobFailed, JobsClient
from streams.models import RawJob

EXAMPLES = Path(__file__).with_name("jobs.jsonl")


async def main() -> None:
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    jobs = [RawJob.model_validate_json(line) for line in EXAMPLES.read_text().splitlines()]
    async with JobsClient(bootstrap=bootstrap) as client:
        sent = await client.publish(jobs, progress=lambda n: print(f"\rpublished {n}", end=""))
        print(f"\rpublished {sent} jobs")
        asked = RawJob(job_id="asked-1", title="Staff SRE", description="Kubernetes, on call.")
        try:
            reply = await client.enrich(asked, timeout=60)
            print("request and reply:", json.dumps(reply.enrichment.model_dump(), indent=2))
        except JobFailed as exc:
            print("request and reply failed:", exc)
        # aclosing: leaving the loop early closes the results' consumer at once.
        results = client.results(group="example-client", from_beginning=True)
        async with contextlib.aclosing(results):
            async for result in results:
                print(result.job_id, type(result).__name__)
                if result.job_id == jobs[-1].job_id:
                    break


if __name__ == "__main__":
    asyncio.run(main())
