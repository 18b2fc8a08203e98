"""Fresh jobs behind a backlog, one pool against tenants with their shares, in one run.

    .venv/bin/python -m bench.tenants [--bulk 1200] [--fresh 60] [--rpm 600]

Two worker processes on four partitions, the simulator answering in 200 ms and OpenAI held to
``--rpm`` for the group: tenant ``bulk`` publishes ``--bulk`` jobs, ten seconds later tenant
``fresh`` publishes ``--fresh`` (``devstack.tenants``). Once with ``LLM_TENANTS`` unset (one
pool, as before tenants: the fresh jobs queue behind the backlog) and once with both tenants
configured at weight 1. Reports the fresh jobs' publication-to-outcome latency p50/p95/max,
the busiest minute's calls against the limit, and bulk's calls a minute once fresh is idle.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.common import broker, run_env, simulator
from devstack.harness import max_in_a_minute
from devstack.tenants import fresh_behind_bulk


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bulk", type=int, default=1200)
    parser.add_argument("--fresh", type=int, default=60)
    parser.add_argument("--rpm", type=int, default=600)
    args = parser.parse_args()
    with broker() as kafka, simulator() as sim:
        for tenants in (False, True):
            workdir = Path(tempfile.mkdtemp(prefix="bench-tenants-"))
            run = fresh_behind_bulk(
                run_env(kafka, sim),
                sim,
                workdir,
                bulk=args.bulk,
                fresh=args.fresh,
                rpm=args.rpm,
                tenants=tenants,
            )
            print(
                f"{'tenants' if tenants else 'one pool':>8}: fresh latency "
                f"p50 {run.latency(50):6.1f} s  p95 {run.latency(95):6.1f} s  "
                f"max {max(run.fresh_latency_s):6.1f} s | busiest minute "
                f"{max_in_a_minute(run.arrivals)} calls (limit {args.rpm}) | bulk alone "
                f"{run.bulk_rpm_alone:.0f} rpm | jobs finished {len(run.finished)}, "
                f"twice {sum(n - 1 for n in run.finished.values())}, "
                f"dead letters {run.dead_letters}",
                flush=True,
            )


if __name__ == "__main__":
    main()
