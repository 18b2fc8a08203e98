"""Today's spend from the stats batches: per provider, per UTC day."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.config.slices import KafkaCluster
from streams.observe.aggregate import StatsBatch, StatsPartial
from streams.observe.spend import SpendFollower, tenant_spend
from streams.observe.stats import empty

NOON = datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp()


def _batch(*parts: tuple[str, float, float]) -> bytes:
    partials = [
        StatsPartial(provider=p, minute=int(at // 60), stats=empty() | {"cost_usd": usd})
        for p, at, usd in parts
    ]
    return StatsBatch(ends={0: 1}, partials=partials).model_dump_json().encode()


def test_spend_adds_up_per_provider_and_starts_again_each_day() -> None:
    now = [NOON]
    follower = SpendFollower(
        cluster=KafkaCluster.plaintext("unused"),
        topic="unused",
        on_change=lambda _: None,
        clock=lambda: now[0],
    )
    yesterday = NOON - 86_400
    follower.apply(_batch(("openai", NOON, 0.25), ("gemini", NOON, 0.5), ("openai", yesterday, 9)))
    follower.apply(_batch(("openai", NOON + 60, 0.5)))
    follower.apply(b"not a batch")
    assert follower.today() == {"openai": 0.75, "gemini": 0.5}
    now[0] = NOON + 12 * 3600  # past midnight
    assert follower.today() == {}


def test_spend_per_tenant_sums_every_provider_s_calls_for_its_jobs() -> None:
    follower = SpendFollower(
        cluster=KafkaCluster.plaintext("unused"),
        topic="unused",
        on_change=lambda _: None,
        spent=tenant_spend,
        clock=lambda: NOON,
    )
    partials = [
        StatsPartial(provider=p, tenant=t, minute=int(NOON // 60), stats=empty() | {"cost_usd": u})
        for p, t, u in (("openai", "bulk", 0.25), ("gemini", "bulk", 0.5), ("openai", "fresh", 1))
    ]
    follower.apply(StatsBatch(ends={0: 1}, partials=partials).model_dump_json().encode())
    follower.apply(_batch(("openai", NOON, 0.125)))  # written before tenants: the default's
    assert follower.today() == {"bulk": 0.75, "fresh": 1.0, "default": 0.125}
