"""Shadow candidates: a cheaper model (or a new prompt) run beside production on sampled live
jobs, its answers compared field by field, never served."""

__all__: list[str] = []
