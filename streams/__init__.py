"""llm-provider-streams: enrich job postings with LLMs over Kafka (Faust)."""

__version__ = "0.1.0"
