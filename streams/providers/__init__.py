"""Provider adapters, one module per vendor, each speaking that vendor's HTTP API."""

from __future__ import annotations

from streams.providers.anthropic import AnthropicProvider
from streams.providers.base import Completion, EnrichRequest, Health, Provider
from streams.providers.deepseek import DeepSeekProvider
from streams.providers.gemini import GeminiProvider
from streams.providers.ollama import OllamaProvider
from streams.providers.openai import OpenAIProvider
from streams.settings import Settings

ADAPTERS: dict[str, type[Provider]] = {
    "openai": OpenAIProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "deepseek": DeepSeekProvider,
    "ollama": OllamaProvider,
}


def build_providers(settings: Settings) -> dict[str, Provider]:
    """One adapter (with its pooled client) per provider, chained or not: the chain can
    change at run time. Clients connect lazily, so an unused one costs nothing."""
    return {
        name: adapter(settings.provider(name), prices=settings.llm_prices)
        for name, adapter in ADAPTERS.items()
    }


__all__ = ["ADAPTERS", "Completion", "EnrichRequest", "Health", "Provider", "build_providers"]
