"""Where a worker's time goes at L = 0: pyinstrument over the pipeline run.

    .venv/bin/python -m bench.profile_pipeline [--jobs 3000] [--concurrency 64]

Writes the call tree (text) to artifacts/pipeline-profile.txt and prints its top.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from pyinstrument import Profiler

from bench.common import broker, settings_for, simulator
from bench.throughput import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        settings = settings_for(
            kafka, sim, llm_provider_chain=["openai"], llm_worker_concurrency=args.concurrency
        )
        profiler = Profiler(interval=0.001)
        profiler.start()
        figures = asyncio.run(pipeline(settings, args.jobs))
        profiler.stop()
    out = Path("artifacts") / "pipeline-profile.txt"
    out.parent.mkdir(exist_ok=True)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    out.write_text(text)
    print(f"{args.jobs / figures['seconds']:.0f} jobs/s; profile in {out}")
    print("\n".join(text.splitlines()[:60]))


if __name__ == "__main__":
    main()
