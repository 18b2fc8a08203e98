"""Where a worker's time goes at L = 0: pyinstrument over the pipeline run.

    .venv/bin/python -m bench.profile_pipeline [--jobs 3000] [--concurrency 64]

Writes the call tree to artifacts/pipeline-profile.txt and the functions by their own time
(where the CPU goes, whoever calls them) to artifacts/pipeline-profile-flat.txt, and prints the
top of both. Sampled without async attribution: an await's wait is not counted as its caller's.
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.renderers import ConsoleRenderer

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
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        figures = asyncio.run(pipeline(settings, args.jobs))
        profiler.stop()
    artifacts = Path("artifacts")
    artifacts.mkdir(exist_ok=True)
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    flat = profiler.output(ConsoleRenderer(flat=True, show_all=True))
    (artifacts / "pipeline-profile.txt").write_text(tree)
    (artifacts / "pipeline-profile-flat.txt").write_text(flat)
    print(f"{args.jobs / figures['seconds']:.0f} jobs/s; profiles in {artifacts}/pipeline-profile*")
    print("\n".join(tree.splitlines()[:60]))
    print("\n".join(flat.splitlines()[:40]))


if __name__ == "__main__":
    main()
