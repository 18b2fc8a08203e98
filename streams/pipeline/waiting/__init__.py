"""The waiting lane: a tenant's jobs that may not go on now (over its daily budget, or above
its fair share of this worker's calls) kept on a compacted topic and released in order."""

__all__: list[str] = []
