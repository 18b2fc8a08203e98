"""What ``llm-streams up`` shows while the stack runs: one status block that updates in place
on a terminal (rich), or a plain line whenever the figures change when stdout is not one
(CI, Docker, a pipe). The figures come from the worker's own API, as an operator's would."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, TextIO

import httpx
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

POLL_S = 1.0
RATE_WINDOW_S = 10.0  # jobs/s is measured over this much of the recent past
PLAIN_AT_MOST_EVERY_S = 5.0
CIRCUIT_STYLE = {"closed": "green", "half_open": "yellow", "open": "red"}


@dataclass(frozen=True, kw_only=True)
class ProviderLine:
    name: str
    calls: int
    errors: int
    circuit: str
    enabled: bool


@dataclass(frozen=True, kw_only=True)
class Snapshot:
    received: int
    enriched: int
    from_cache: int  # of the enriched: reposts answered by the repost cache
    dead_lettered: int
    in_flight: int
    lag: int
    intake_paused: bool
    providers: tuple[ProviderLine, ...]

    @property
    def finished(self) -> int:
        return self.enriched + self.dead_lettered


def read_snapshot(client: httpx.Client) -> Snapshot:
    """The figures now, from ``/jobs``, ``/status`` and ``/providers``."""
    jobs = _json(client, "/jobs?minutes=1")
    status = _json(client, "/status")
    providers = _json(client, "/providers")["providers"]
    return Snapshot(
        received=jobs["totals"]["received"],
        enriched=jobs["totals"]["enriched"],
        from_cache=jobs["repost_cache"]["hits"],
        dead_lettered=jobs["totals"]["dead_lettered"],
        in_flight=status["jobs_in_flight"],
        lag=jobs["lag"]["total"],
        intake_paused=status["intake_paused"],
        providers=tuple(
            ProviderLine(
                name=p["name"],
                calls=p["totals"]["calls"],
                errors=p["totals"]["calls"] - p["totals"]["outcomes"].get("success", 0),
                circuit=p["circuit"]["state"],
                enabled=p["enabled"],
            )
            for p in providers
            if p["in_chain"]
        ),
    )


def _json(client: httpx.Client, path: str) -> Any:
    response = client.get(path)
    response.raise_for_status()
    return response.json()


class Rate:
    """Jobs finished per second over the last RATE_WINDOW_S."""

    def __init__(self) -> None:
        self._seen: deque[tuple[float, int]] = deque()

    def add(self, at: float, finished: int) -> float:
        self._seen.append((at, finished))
        while len(self._seen) > 2 and at - self._seen[0][0] > RATE_WINDOW_S:
            self._seen.popleft()
        (first_at, first), (last_at, last) = self._seen[0], self._seen[-1]
        return (last - first) / (last_at - first_at) if last_at > first_at else 0.0


def render(snapshot: Snapshot | None, *, rate: float, problem: str | None) -> Group:
    """The live block: the jobs, then one row per provider in the chain (the last figures
    read, with the reason the latest poll failed, if it did)."""
    if snapshot is None:
        return Group(Text(f"waiting for the worker: {problem}", style="yellow"))
    jobs = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    columns = ("jobs in", "enriched", "from cache", "dead-lettered", "in flight", "jobs/s", "lag")
    for column in columns:
        jobs.add_column(column, justify="right")
    jobs.add_row(
        str(snapshot.received),
        Text(str(snapshot.enriched), style="green"),
        str(snapshot.from_cache),
        Text(str(snapshot.dead_lettered), style="red" if snapshot.dead_lettered else ""),
        str(snapshot.in_flight),
        f"{rate:.1f}",
        str(snapshot.lag),
    )
    providers = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column, justify in (("provider", "left"), ("calls", "right"), ("errors", "right")):
        providers.add_column(column, justify=justify)  # type: ignore[arg-type]
    providers.add_column("circuit")
    for p in snapshot.providers:
        circuit = Text(p.circuit.replace("_", "-"), style=CIRCUIT_STYLE.get(p.circuit, ""))
        if not p.enabled:
            circuit = Text("disabled", style="red")
        providers.add_row(p.name, str(p.calls), str(p.errors), circuit)
    extra = []
    if snapshot.intake_paused:
        extra.append(Text("intake paused: no provider can take a call", style="yellow"))
    if problem:
        extra.append(Text(f"last poll failed: {problem}", style="yellow"))
    return Group(jobs, Text(""), providers, *extra)


def plain_line(snapshot: Snapshot, *, rate: float) -> str:
    providers = " · ".join(
        f"{p.name} {p.calls} calls {p.errors} errors {p.circuit if p.enabled else 'disabled'}"
        for p in snapshot.providers
    )
    paused = " · intake paused" if snapshot.intake_paused else ""
    return (
        f"[up] jobs in {snapshot.received} · enriched {snapshot.enriched} "
        f"({snapshot.from_cache} from cache) · dead-lettered "
        f"{snapshot.dead_lettered} · in flight {snapshot.in_flight} · {rate:.1f} jobs/s · "
        f"lag {snapshot.lag}{paused} · {providers}"
    )


def show_status(web: str, *, running: Callable[[], bool], live: bool, out: TextIO) -> None:
    """Poll the worker and show its figures until ``running()`` turns false."""
    rate, per_s = Rate(), 0.0
    last: Snapshot | None = None  # the latest figures, still shown while a poll fails
    said: Snapshot | None = None
    said_at = 0.0
    block = Live(render(None, rate=0, problem="starting"), console=Console(file=out))
    with httpx.Client(base_url=web, timeout=POLL_S * 5) as client, block if live else nullcontext():
        while running():
            snapshot, problem = _poll(client)
            now = time.monotonic()
            if snapshot is not None:
                last, per_s = snapshot, rate.add(now, snapshot.finished)
            if live:
                block.update(render(last, rate=per_s, problem=problem))
            elif last is not None and last != said and now - said_at >= PLAIN_AT_MOST_EVERY_S:
                print(plain_line(last, rate=per_s), file=out, flush=True)
                said, said_at = last, now
            time.sleep(POLL_S)


def _poll(client: httpx.Client) -> tuple[Snapshot | None, str | None]:
    try:
        return read_snapshot(client), None
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        return None, str(exc) or type(exc).__name__
