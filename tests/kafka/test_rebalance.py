"""One listener on Faust's rebalance signals hands each part the raw topic's partitions."""

from __future__ import annotations

import faust
from faust.types import TP

from streams.kafka.rebalance import Rebalances


async def test_each_part_hears_the_raw_partitions_assigned_then_given_back_in_reverse() -> None:
    app = faust.App("rebalance-test", broker="kafka://127.0.0.1:1")
    rebalances = Rebalances(app, topic="jobs.raw")
    heard: list[tuple[str, list[int]]] = []

    async def lane_revoked(partitions: frozenset[int]) -> None:
        heard.append(("lane revoked", sorted(partitions)))

    rebalances.follow(
        assigned=lambda partitions: heard.append(("lane assigned", sorted(partitions))),
        revoked=lane_revoked,
    )
    rebalances.follow(
        assigned=lambda partitions: heard.append(("share", sorted(partitions))),
        revoked=lambda partitions: heard.append(("share revoked", sorted(partitions))),
    )
    mine = {TP("jobs.raw", 0), TP("jobs.raw", 2), TP("llm.calls", 1)}
    await app.on_partitions_assigned.send(mine)
    await app.on_partitions_revoked.send({TP("jobs.raw", 2), TP("llm.stats", 0)})
    assert heard == [
        ("lane assigned", [0, 2]),
        ("share", [0, 2]),
        ("share revoked", [2]),
        ("lane revoked", [2]),
    ]
