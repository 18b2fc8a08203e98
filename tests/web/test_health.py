"""The service's state in the seed service's words, from the broker, intake and providers."""

from __future__ import annotations

import pytest

from streams.web.bodies import HealthState
from streams.web.health import service_status


@pytest.mark.parametrize(
    ("broker_ok", "paused", "providers", "expected"),
    [
        (True, False, {"openai": "healthy", "deepseek": "unknown"}, "healthy"),
        (True, False, {"openai": "down", "deepseek": "healthy"}, "degraded"),
        (True, True, {"openai": "healthy"}, "degraded"),
        (True, False, {"openai": "disabled"}, "healthy"),
        (False, False, {"openai": "healthy"}, "unhealthy"),
    ],
)
def test_the_service_status(
    broker_ok: bool, paused: bool, providers: dict[str, HealthState], expected: str
) -> None:
    status = service_status(broker_ok=broker_ok, intake_paused=paused, providers=providers)
    assert status == expected
