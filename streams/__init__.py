"""llm-provider-streams: enrich job postings with LLMs over Kafka (Faust)."""

from importlib.metadata import version

__all__ = ["__version__"]

__version__ = version("llm-provider-streams")
