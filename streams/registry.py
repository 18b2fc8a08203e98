"""Every provider this service speaks to, described once.

Each ``ProviderSpec`` says which adapter speaks the vendor's API, which environment variables
configure it and what it defaults to. Settings fields, the OpenAPI enums, the local stack's
simulator wiring and the README's table all derive from ``SPECS``: adding a provider is one
adapter module, one entry here and one simulator dialect.

Adapters are named, not imported, so that a process that only publishes a command (``llm-streams
config set``) does not load five HTTP clients to read a variable name.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.vocab import PROVIDER_NAMES, ProviderName

__all__ = ["SPECS"]


@dataclass(frozen=True, kw_only=True)
class ProviderSpec:
    name: ProviderName
    adapter: str  # "module:Class", imported by streams.providers.build when a worker starts
    key_variable: str
    default_model: str
    default_base_url: str
    # Whether the vendor's endpoint needs a key (a local Ollama does not).
    needs_key: bool = True

    @property
    def url_variable(self) -> str:
        return f"{self.name.upper()}_BASE_URL"

    @property
    def model_variable(self) -> str:
        return f"{self.name.upper()}_MODEL"


SPECS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec(
            name="openai",
            adapter="streams.providers.openai:OpenAIProvider",
            key_variable="OPENAI_API_KEY",
            default_model="gpt-5.4-mini",
            default_base_url="https://api.openai.com/v1",
        ),
        ProviderSpec(
            name="anthropic",
            adapter="streams.providers.anthropic:AnthropicProvider",
            key_variable="ANTHROPIC_API_KEY",
            default_model="claude-haiku-4-5",
            default_base_url="https://api.anthropic.com",
        ),
        ProviderSpec(
            name="gemini",
            adapter="streams.providers.gemini:GeminiProvider",
            key_variable="GOOGLE_API_KEY",
            default_model="gemini-2.5-flash-lite",
            default_base_url="https://generativelanguage.googleapis.com",
        ),
        ProviderSpec(
            name="deepseek",
            adapter="streams.providers.deepseek:DeepSeekProvider",
            key_variable="DEEPSEEK_API_KEY",
            default_model="deepseek-v4-flash",
            default_base_url="https://api.deepseek.com",
        ),
        ProviderSpec(
            name="ollama",
            adapter="streams.providers.ollama:OllamaProvider",
            # a key only for ollama.com's hosted models
            key_variable="OLLAMA_API_KEY",
            default_model="llama3.2",
            default_base_url="http://localhost:11434",
            needs_key=False,
        ),
        ProviderSpec(
            name="compatible",
            adapter="streams.providers.compatible:CompatibleProvider",
            # a key only where the server was started with one (vLLM --api-key, llama.cpp's)
            key_variable="COMPATIBLE_API_KEY",
            default_model="local",
            default_base_url="http://127.0.0.1:8080/v1",
            needs_key=False,
        ),
    )
}

if tuple(SPECS) != PROVIDER_NAMES:  # pragma: no cover - a wrong edit fails at import
    raise RuntimeError("SPECS must describe exactly the providers of ProviderName, in order")
