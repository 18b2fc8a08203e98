"""A tenant's fair share of the worker's calls: alone it has all of them; with others in want
it has its weighted part, and always room for one."""

from __future__ import annotations

from streams.pipeline.waiting.share import Shares


def test_a_tenant_alone_has_the_whole_worker_and_shares_it_by_weight_with_others() -> None:
    weights = {"bulk": 1.0, "fresh": 3.0}
    shares = Shares(capacity=64, weight=lambda t: weights.get(t, 1.0))
    for _ in range(63):
        shares.started("bulk")
    assert shares.has_room("bulk")
    shares.started("bulk")
    assert not shares.has_room("bulk"), "64 of 64"
    assert shares.share("fresh") == 48, "three quarters once it wants calls"
    assert shares.share("bulk", waiting={"fresh"}) == 16
    assert shares.has_room("fresh")
    for _ in range(64):
        shares.ended("bulk")
    assert shares.in_flight == {}
    assert shares.share("bulk", waiting={"fresh"}) == 16, "a tenant waiting still wants its part"


def test_a_tenant_always_has_room_for_one_call() -> None:
    shares = Shares(capacity=2, weight=lambda t: 1.0)
    assert shares.has_room("c", waiting={"a", "b", "d"}), "its share is half a call"
    shares.started("c")
    assert not shares.has_room("c", waiting={"a", "b", "d"})
