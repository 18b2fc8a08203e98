"""The vendors' Batch APIs, each wrapping its live adapter. DeepSeek and Ollama have none."""

from __future__ import annotations

from streams.providers.base import Provider
from streams.providers.batch.anthropic import AnthropicBatches
from streams.providers.batch.base import BatchAPI
from streams.providers.batch.gemini import GeminiBatches
from streams.providers.batch.openai import OpenAIBatches

__all__ = ["BATCH_APIS", "batch_apis"]

BATCH_APIS: dict[str, type[BatchAPI]] = {
    "openai": OpenAIBatches,
    "anthropic": AnthropicBatches,
    "gemini": GeminiBatches,
}


def batch_apis(providers: dict[str, Provider]) -> dict[str, BatchAPI]:
    """A Batch API for every provider that has one."""
    return {name: BATCH_APIS[name](p) for name, p in providers.items() if name in BATCH_APIS}
