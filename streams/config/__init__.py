"""Settings from the environment, and the slice of them each part receives."""

__all__: list[str] = []
