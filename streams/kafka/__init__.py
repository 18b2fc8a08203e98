"""Kafka plumbing: topics, admin helpers, the whole-topic follower and the seek-safe transport."""
