"""Running a real Apache Kafka broker locally, without Docker."""

from devstack.broker.launcher import KAFKA_VERSION, BrokerError, LocalKafka, ensure_jars

__all__ = ["KAFKA_VERSION", "BrokerError", "LocalKafka", "ensure_jars"]
