"""The semantic conventions this service follows, in one place.

GenAI conventions as of semantic-conventions v1.41.0, the last release of the main
repository and what instrumentations emit by default (the newer names of the GenAI
repository are opt-in there). Kafka spans follow the messaging conventions of the same
release. What the conventions do not define (cost, lane, outcome) is named under this
service's own prefix.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "DURATION_BUCKETS_S",
    "OPERATION",
    "SCHEMA_URL",
    "SEMCONV_VERSION",
    "SERVICE",
    "TOKEN_BUCKETS",
    "kafka_process",
    "kafka_send",
    "provider_name",
]

SEMCONV_VERSION: Final = "1.41.0"
SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"

# Every adapter asks for a chat completion (or Gemini's generateContent, which the
# conventions also call "chat" when the request is a conversation).
OPERATION: Final = "chat"

# The conventions' well-known values; Ollama has none yet, so its own name.
_PROVIDER_NAMES: Final = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "deepseek": "deepseek",
    "ollama": "ollama",
}


def provider_name(provider: str) -> str:
    """``gen_ai.provider.name`` for one of this service's provider names."""
    return _PROVIDER_NAMES.get(provider, provider)


def kafka_send(topic: str, key: str) -> dict[str, Any]:
    """A Kafka ``send`` span's messaging attributes."""
    return {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.operation.type": "send",
        "messaging.destination.name": topic,
        "messaging.kafka.message.key": key,
    }


def kafka_process(record: Any, *, group: str) -> dict[str, Any]:
    """A Kafka ``process`` span's messaging attributes, for a record of aiokafka's or
    Faust's (both have topic, partition, offset and key)."""
    attributes = {
        "messaging.system": "kafka",
        "messaging.operation.name": "process",
        "messaging.operation.type": "process",
        "messaging.destination.name": record.topic,
        "messaging.destination.partition.id": str(record.partition),
        "messaging.consumer.group.name": group,
        "messaging.kafka.offset": record.offset,
    }
    if record.key is not None:
        attributes["messaging.kafka.message.key"] = bytes(record.key).decode("utf-8", "replace")
    return attributes


class SERVICE:
    """This service's own attributes."""

    COST_USD: Final = "llm_streams.cost_usd"
    LANE: Final = "llm_streams.lane"
    ATTEMPT: Final = "llm_streams.attempt"
    OUTCOME: Final = "llm_streams.outcome"
    JOB_ID: Final = "llm_streams.job_id"
    BATCH_ID: Final = "llm_streams.batch_id"
    WAIT: Final = "llm_streams.wait"
    PROMPT_VERSION: Final = "llm_streams.prompt_version"
    ESTIMATED: Final = "llm_streams.usage_estimated"  # a call cut off: its usage assumed


# The conventions' advised histogram buckets.
TOKEN_BUCKETS: Final = tuple(float(4**n) for n in range(14))  # 1, 4, 16, ... 67108864
DURATION_BUCKETS_S: Final = tuple(0.01 * 2**n for n in range(14))  # 0.01 ... 81.92
