"""The status block's figures and words, apart from any terminal."""

from __future__ import annotations

import io

from rich.console import Console

from devstack.console import ProviderLine, Rate, Snapshot, plain_line, render

SNAPSHOT = Snapshot(
    received=120,
    enriched=100,
    from_cache=7,
    dead_lettered=3,
    in_flight=17,
    lag=4,
    intake_paused=True,
    providers=(
        ProviderLine(name="openai", calls=90, errors=12, circuit="open", enabled=True),
        ProviderLine(name="gemini", calls=0, errors=0, circuit="closed", enabled=False),
    ),
)


def test_the_rate_is_jobs_finished_per_second_over_the_recent_window() -> None:
    rate = Rate()
    assert rate.add(0.0, 0) == 0.0
    assert rate.add(1.0, 10) == 10.0
    assert rate.add(2.0, 30) == 15.0
    assert rate.add(30.0, 30) == 0.0, "an idle minute forgets the burst"


def test_the_block_names_every_figure_and_state() -> None:
    out = io.StringIO()
    Console(file=out, width=120).print(render(SNAPSHOT, rate=2.5, problem="timed out"))
    text = out.getvalue()
    for figure in ("120", "100", "7", "3", "17", "2.5", "4"):
        assert figure in text
    assert "open" in text
    assert "disabled" in text
    assert "intake paused" in text
    assert "last poll failed: timed out" in text


def test_before_the_first_figures_the_block_says_what_it_waits_for() -> None:
    out = io.StringIO()
    Console(file=out, width=120).print(render(None, rate=0, problem="connection refused"))
    assert "waiting for the worker: connection refused" in out.getvalue()


def test_the_plain_line_carries_the_same_figures() -> None:
    assert plain_line(SNAPSHOT, rate=2.5) == (
        "[up] jobs in 120 · enriched 100 (7 from cache) · dead-lettered 3 · in flight 17 · "
        "2.5 jobs/s · lag 4 · intake paused · openai 90 calls 12 errors open · "
        "gemini 0 calls 0 errors disabled"
    )
