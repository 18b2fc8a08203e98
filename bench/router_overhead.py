"""What the router costs per call, against a direct httpx call and against LiteLLM's Router.

    .venv/bin/python -m bench.router_overhead [--calls 2000]

All three send the same OpenAI chat request to the simulator (its own process, no added
latency) at concurrency 1 and 64: direct httpx (over aiohttp, as our adapters), our Router
(adapter, local schema validation, retries, breaker, limits) and LiteLLM's Router
(``litellm`` runs in its own virtualenv, ``.venv-litellm``, made on first use: its pins must
not touch ours). Prints microseconds per call and the overhead over the direct call.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import time
import venv
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from httpx_aiohttp import AiohttpTransport

from bench.common import simulator
from streams.config.settings import load_settings
from streams.deadline import Deadline
from streams.models import RawJob
from streams.providers.base import EnrichRequest
from streams.providers.build import build_providers
from streams.routing.router import Router

LITELLM_VENV = Path(".venv-litellm")
JOB = RawJob(
    job_id="o1",
    title="Senior Python Engineer",
    description="5+ years Python and Kafka on AWS. Remote (EU). EUR 80-95k.",
)

# Runs inside .venv-litellm: the same request through litellm.Router, timed the same way.
LITELLM_SCRIPT = r"""
import asyncio, json, sys, time
import litellm
from litellm import Router
litellm.telemetry = False
base, key, body = sys.argv[1], sys.argv[2], json.loads(sys.argv[5])
calls, concurrency = int(sys.argv[3]), int(sys.argv[4])
router = Router(model_list=[{"model_name": "job", "litellm_params": {
    "model": "openai/" + body["model"], "api_base": base, "api_key": key}}], num_retries=0)
async def one():
    await router.acompletion(
        model="job", messages=body["messages"], response_format=body["response_format"],
        max_completion_tokens=body["max_completion_tokens"])
async def main():
    slots = asyncio.Semaphore(concurrency)
    async def bounded():
        async with slots:
            await one()
    await asyncio.gather(*(bounded() for _ in range(concurrency)))
    began = time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(calls)))
    print(json.dumps({"seconds": time.perf_counter() - began}))
asyncio.run(main())
"""


def _litellm_python() -> Path:
    python = LITELLM_VENV / "bin" / "python"
    if not python.exists():
        venv.create(LITELLM_VENV, with_pip=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "litellm"], check=True)
    return python


async def _timed(call: Callable[[], Awaitable[object]], calls: int, concurrency: int) -> float:
    slots = asyncio.Semaphore(concurrency)

    async def bounded() -> None:
        async with slots:
            await call()

    await asyncio.gather(*(bounded() for _ in range(concurrency)))  # warm up
    began = time.perf_counter()
    await asyncio.gather(*(bounded() for _ in range(calls)))
    return time.perf_counter() - began


async def ours(calls: int, concurrency: int) -> dict[str, float]:
    settings = load_settings(llm_provider_chain=["openai"])
    providers = build_providers(settings.provider)
    adapter = providers["openai"]
    path, body = adapter.build(EnrichRequest(job=JOB), adapter.model)
    client = httpx.AsyncClient(
        base_url=adapter.config.base_url,
        headers=adapter.auth_headers(),
        transport=AiohttpTransport(limits=httpx.Limits(max_connections=256)),
    )

    async def direct() -> None:
        (await client.post(path, json=body)).json()

    router = Router(settings.routing(), providers)
    request = router.request_for(JOB)
    results = {
        "direct_httpx": await _timed(direct, calls, concurrency),
        "our_router": await _timed(
            lambda: router.enrich(request, deadline=Deadline.after(45)), calls, concurrency
        ),
    }
    await client.aclose()
    for provider in providers.values():
        await provider.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    python = _litellm_python()
    rows = []
    with simulator() as sim:
        os.environ.update(sim.env())
        settings = load_settings()
        adapter = build_providers(settings.provider)["openai"]
        _, body = adapter.build(EnrichRequest(job=JOB), adapter.model)
        for concurrency in (1, 64):
            seconds = asyncio.run(ours(args.calls, concurrency))
            litellm = subprocess.run(
                [
                    python,
                    "-c",
                    LITELLM_SCRIPT,
                    settings.provider("openai").base_url,
                    sim.env()["OPENAI_API_KEY"],
                    str(args.calls),
                    str(concurrency),
                    json.dumps(body),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            seconds["litellm_router"] = json.loads(litellm.stdout.strip().splitlines()[-1])[
                "seconds"
            ]
            per_call = {k: v / args.calls * 1e6 for k, v in seconds.items()}
            base = per_call["direct_httpx"]
            row = {"concurrency": concurrency, "calls": args.calls}
            row |= {f"{k}_us_per_call": round(v, 1) for k, v in per_call.items()}
            ours_over = per_call["our_router"] - base
            theirs_over = per_call["litellm_router"] - base
            row |= {
                "our_overhead_us": round(ours_over, 1),
                "litellm_overhead_us": round(theirs_over, 1),
                "litellm_over_ours": round(theirs_over / ours_over, 1) if ours_over > 0 else None,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
