"""llm-provider-streams: enrich job postings with LLMs over Kafka (Faust)."""

from importlib.metadata import version

__version__ = version("llm-provider-streams")
