"""Kafka plumbing: topics, the clients made outside Faust, the readers and their supervisor,
admin helpers and the seek-safe transport."""

__all__: list[str] = []
