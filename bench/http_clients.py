"""The HTTP client under the adapters: httpx's own pool against aiohttp, side by side.

    .venv/bin/python -m bench.http_clients [--calls 1000] [--concurrency 64] [--latency-ms 50]

Each client sends the same OpenAI request to the simulator (its own process, fixed latency
L plus up to L of jitter) at the same concurrency. Prints calls per second, p50/p95, and the
ratio to the ideal concurrency / mean latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from bench.common import percentile, simulator
from streams.config.settings import load_settings
from streams.models import RawJob
from streams.providers.base import EnrichRequest
from streams.providers.openai import OpenAIProvider

JOB = RawJob(
    job_id="b1",
    title="Senior Python Engineer",
    description="5+ years Python and Kafka on AWS. Remote (EU). EUR 80-95k.",
)


async def measure(
    post: Callable[[], Awaitable[None]], calls: int, concurrency: int
) -> dict[str, float]:
    slots = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one() -> None:
        async with slots:
            began = time.perf_counter()
            await post()
            latencies.append(time.perf_counter() - began)

    await asyncio.gather(*(one() for _ in range(concurrency)))  # warm the connections
    latencies.clear()
    began = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    elapsed = time.perf_counter() - began
    return {
        "calls_per_s": round(calls / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p95_ms": round(percentile(latencies, 95) * 1000, 1),
    }


async def run(
    url: str, headers: dict[str, str], body: object, args: argparse.Namespace
) -> dict[str, object]:
    limits = httpx.Limits(
        max_connections=args.concurrency * 2, max_keepalive_connections=args.concurrency * 2
    )
    clients: dict[str, httpx.AsyncClient] = {
        "httpx, default pool": httpx.AsyncClient(headers=headers),
        "httpx, pool sized to the concurrency": httpx.AsyncClient(headers=headers, limits=limits),
        "httpx over aiohttp (httpx-aiohttp)": httpx.AsyncClient(
            headers=headers, transport=AiohttpTransport(limits=limits)
        ),
    }
    results: dict[str, object] = {}
    for name, client in clients.items():

        async def post(client: httpx.AsyncClient = client) -> None:
            (await client.post(url, json=body)).json()

        results[name] = await measure(post, args.calls, args.concurrency)
        await client.aclose()
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=args.concurrency * 2)
    ) as session:

        async def post_aiohttp() -> None:
            async with session.post(url, json=body) as response:
                await response.json()

        results["aiohttp"] = await measure(post_aiohttp, args.calls, args.concurrency)
    ideal = args.concurrency / (args.latency_ms * 1.5 / 1000)  # mean of L + uniform(0, L)
    for figures in results.values():
        assert isinstance(figures, dict)
        figures["ratio_to_ideal"] = round(figures["calls_per_s"] / ideal, 3)
    return {"ideal_calls_per_s": round(ideal, 1), **results}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=50)
    args = parser.parse_args()
    with simulator() as sim:
        sim.set_faults("openai", latency_ms=args.latency_ms, latency_jitter_ms=args.latency_ms)
        settings = load_settings(**{"openai_base_url": sim.env()["OPENAI_BASE_URL"]})
        adapter = OpenAIProvider(settings.provider("openai"))
        path, body = adapter.build(EnrichRequest(job=JOB), adapter.model)
        headers = {"Authorization": f"Bearer {sim.env()['OPENAI_API_KEY']}"}
        result = asyncio.run(run(settings.provider("openai").base_url + path, headers, body, args))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
