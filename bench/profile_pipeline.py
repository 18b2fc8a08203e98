"""Where a worker's time goes: pyinstrument over the pipeline run.

    .venv/bin/python -m bench.profile_pipeline [--jobs 3000] [--concurrency 64] [--latency-ms 0]

Writes the call tree to artifacts/pipeline-profile.txt and the time each package and each of
this package's functions spent in its own code (where the CPU goes, whoever called it) to
artifacts/pipeline-profile-own.txt, and prints the top of both. Sampled without async
attribution, so an await's wait is not counted as its caller's, and on asyncio's own event
loop rather than uvloop, whose waiting happens in C where no sample can tell it from work.
"""

from __future__ import annotations

import argparse
import asyncio
from collections import defaultdict
from pathlib import Path

from pyinstrument import Profiler
from pyinstrument.frame import Frame

from bench.common import broker, settings_for, simulator
from bench.throughput import pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=0)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        sim.set_faults("openai", latency_ms=args.latency_ms)
        settings = settings_for(
            kafka,
            sim,
            llm_provider_chain=["openai"],
            llm_worker_concurrency=args.concurrency,
            llm_provider_limits={"openai": {"concurrency": max(64, args.concurrency)}},
        )
        profiler = Profiler(interval=0.001, async_mode="disabled")
        profiler.start()
        figures = asyncio.run(pipeline(settings, args.jobs))
        profiler.stop()
    artifacts = Path("artifacts")
    artifacts.mkdir(exist_ok=True)
    tree = profiler.output_text(unicode=False, color=False, show_all=False)
    session = profiler.last_session
    root = session.root_frame() if session else None
    assert root is not None, "the profiler recorded nothing"
    own = own_time(root, cpu_s=figures["cpu_seconds"])
    (artifacts / "pipeline-profile.txt").write_text(tree)
    (artifacts / "pipeline-profile-own.txt").write_text(own)
    print(
        f"{args.jobs / figures['seconds']:.0f} jobs/s, "
        f"{figures['cpu_seconds'] * 1000 / args.jobs:.2f} CPU-ms per job (profiled); "
        f"profiles in {artifacts}/pipeline-profile*"
    )
    print("\n".join(tree.splitlines()[:60]))
    print("\n".join(own.splitlines()[:45]))


def own_time(root: Frame, *, cpu_s: float) -> str:
    """Seconds in each package's own code, then in each of this package's functions."""
    packages: defaultdict[str, float] = defaultdict(float)
    ours: defaultdict[str, float] = defaultdict(float)
    stack: list[tuple[Frame, Frame]] = [(root, root)]
    while stack:
        frame, parent = stack.pop()
        stack.extend((child, frame) for child in frame.children)
        own = frame.time - sum(child.time for child in frame.children)
        if own <= 0:
            continue
        # pyinstrument keeps a function's own time in a "[self]" child of its frame
        owner = parent if frame.function == "[self]" else frame
        package = _package(owner)
        packages[package] += own
        if package == "streams":
            ours[f"{owner.function} {owner.file_path_short}:{owner.line_no}"] += own
    lines = [f"own time by package (seconds; the run's CPU: {cpu_s:.1f} s)"]
    lines += [f"{seconds:8.3f}  {name}" for name, seconds in _largest(packages)]
    lines += ["", "own time of this package's functions (seconds)"]
    lines += [f"{seconds:8.3f}  {name}" for name, seconds in _largest(ours)[:40]]
    return "\n".join(lines) + "\n"


def _largest(seconds: dict[str, float]) -> list[tuple[str, float]]:
    return sorted(seconds.items(), key=lambda item: -item[1])


def _package(frame: Frame) -> str:
    if frame.function == "epoll.poll":
        return "(idle: waiting for sockets)"
    path = frame.file_path or ""
    if "site-packages/" in path:
        return path.split("site-packages/")[1].split("/")[0]
    if "/streams/" in path:
        return "streams"
    if "/asyncio/" in path:
        return "asyncio"
    return "(python and built-ins)"


if __name__ == "__main__":
    main()
