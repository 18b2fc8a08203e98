"""Operator commands on topics: runtime control (enable, disable, config, reset) and replay
of dead letters."""

__all__: list[str] = []
