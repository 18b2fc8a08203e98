"""Running a real Apache Kafka broker, or a cluster of them, locally without Docker."""

from devstack.broker.launcher import KAFKA_VERSION, BrokerError, ensure_jars
from devstack.broker.nodes import LocalKafka

__all__ = ["KAFKA_VERSION", "BrokerError", "LocalKafka", "ensure_jars"]
