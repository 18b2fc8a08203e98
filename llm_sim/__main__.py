"""``python -m llm_sim`` (or ``llm-sim``): serve the five providers' APIs on loopback."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click
from pydantic import TypeAdapter, ValidationError

from llm_sim.faults import Faults
from llm_sim.server import DEFAULT_API_KEY, DIALECTS, Simulator, base_urls, serve


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=0, help="0 picks a free port.")
@click.option("--api-key", default=DEFAULT_API_KEY, show_default=True, help="The key it accepts.")
@click.option("--seed", type=int, default=0, show_default=True, help="Fault dice seed.")
@click.option("--latency-ms", type=float, default=0.0, show_default=True, help="Every provider.")
@click.option(
    "--error-rate", type=click.FloatRange(0, 1), default=0.0, help="500s, every provider."
)
@click.option(
    "--faults",
    "faults_json",
    default=None,
    help='Per provider, as JSON: \'{"openai": {"errors": {"429": 0.3}, "retry_after_s": 2}}\'.',
)
@click.option(
    "--labels",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Answer the jobs of this evaluation set (JSONL) from its labels.",
)
def main(
    host: str,
    port: int,
    api_key: str,
    seed: int,
    latency_ms: float,
    error_rate: float,
    faults_json: str | None,
    labels: str | None,
) -> None:
    """Serve the five providers' APIs on loopback; prints one BASE_URL line per provider.

    Faults can also be changed while it runs: PUT /_sim/faults/{provider} with the same JSON."""
    everywhere = Faults(latency_ms=latency_ms, errors={500: error_rate} if error_rate else {})
    faults: dict[str, Faults] = {dialect.provider: everywhere for dialect in DIALECTS}
    if faults_json:
        try:
            faults |= TypeAdapter(dict[str, Faults]).validate_json(faults_json)
        except ValidationError as exc:
            raise click.BadParameter(str(exc), param_hint="--faults") from None
    sim = Simulator(api_key=api_key, faults=faults, seed=seed)
    if labels is not None:
        try:
            sim.labels.load(Path(labels).read_text())
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--labels") from None

    async def run() -> None:
        runner, bound = await serve(sim, host=host, port=port)
        for name, url in base_urls(host, bound).items():
            click.echo(f"{name}={url}")
        sys.stdout.flush()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await runner.cleanup()

    asyncio.run(run())


if __name__ == "__main__":
    main()
