"""Turning one job into provider attempts: deadline, retry policy, per-provider gates
(circuit breaker, rate limits, cool-down) and the routing loop."""

__all__: list[str] = []
