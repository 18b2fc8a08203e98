"""A provider's health from real traffic (passive first: no paid call in a loop), its view for
the API, this worker's consumer lag, and the service's state in the seed service's words."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from streams.observe import stats as st
from streams.observe.tables import StatsStore
from streams.routing.status import ProviderStatus
from streams.web.bodies import HealthState

__all__ = ["consumer_lag", "passive_health", "provider_view", "service_status"]

PASSIVE_WINDOW_MIN = 5  # the response names it: last_5_minutes
HEALTHY_SUCCESS_RATE = 0.9
HEALTHY_RATE_LIMITED_RATE = 0.1

ServiceStatus = Literal["healthy", "degraded", "unhealthy"]


def service_status(
    *, broker_ok: bool, intake_paused: bool, providers: dict[str, HealthState]
) -> ServiceStatus:
    """Unhealthy without a broker; degraded while intake is paused or a provider is down."""
    if not broker_ok:
        return "unhealthy"
    if intake_paused or "down" in providers.values():
        return "degraded"
    return "healthy"


def passive_health(status: ProviderStatus, stats: StatsStore) -> dict[str, Any]:
    """The state from the last minutes' calls and the circuit."""
    provider = status.name
    since = st.minute_of(datetime.now(UTC)) - PASSIVE_WINDOW_MIN
    recent = st.empty()
    for value in stats.minutes_since(since).get(provider, {}).values():
        recent = st.merge(recent, value)
    figures = st.summary(recent)
    state: HealthState
    if not status.enabled:
        state = "disabled"
    elif status.circuit.state == "open":
        state = "down"
    elif not figures["calls"]:
        state = "unknown"
    elif (figures["success_rate"] or 0) >= HEALTHY_SUCCESS_RATE and (
        figures["rate_limited_rate"] or 0
    ) < HEALTHY_RATE_LIMITED_RATE:
        state = "healthy"
    else:
        state = "degraded"
    return {"state": state, "last_5_minutes": figures}


def provider_view(status: ProviderStatus, stats: StatsStore) -> dict[str, Any]:
    return {
        **status.model_dump(),
        "health": passive_health(status, stats),
        "totals": st.summary(stats.totals.get(status.name) or st.empty()),
    }


async def consumer_lag(app: Any, topic: str) -> dict[str, int]:
    """Records of ``topic`` not yet read, per partition this worker holds."""
    lag: dict[str, int] = {}
    consumer = app.consumer
    for tp in consumer.assignment():
        if tp.topic != topic:
            continue
        position = await consumer.position(tp)
        lag[str(tp.partition)] = max(0, consumer.highwater(tp) - (position or 0))
    return lag
