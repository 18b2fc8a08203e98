"""An OpenAI-compatible server run by the user (vLLM, llama.cpp's server, LM Studio, SGLang,
TGI and the like): OpenAI's chat-completions wire format, with what such servers share
rather than what OpenAI's own API adds.

Differences from ``openai.py``: ``max_tokens`` (every one of them takes it; not all take
``max_completion_tokens``), any temperature, no ``prompt_cache_key`` (OpenAI's routing hint),
no key unless the server was started with one, and, for a server that takes only
``json_object`` (``COMPATIBLE_RESPONSE_FORMAT``), the schema in the prompt. The schema sent
carries the keywords llama.cpp's grammar enforces (vLLM's and SGLang's decoders take them
too). Either way the answer is validated here, as every provider's
is. Its price is zero unless ``LLM_PRICES``
names the model (self-hosted capacity has a cost too: say it there).
"""

from __future__ import annotations

from typing import Any

from streams.providers.base import EnrichRequest
from streams.providers.openai import OpenAIProvider
from streams.providers.structured import LLAMA_CPP, schema_for

__all__ = ["CompatibleProvider"]


class CompatibleProvider(OpenAIProvider):
    name = "compatible"

    @property
    def schema_in_prompt(self) -> bool:  # type: ignore[override]
        return not self.config.json_schema

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        response_format: dict[str, Any] = {"type": "json_object"}
        if self.config.json_schema:
            response_format = {
                "type": "json_schema",
                "json_schema": {
                    "name": "job_enrichment",
                    "strict": True,
                    "schema": schema_for(LLAMA_CPP, grammar=True),
                },
            }
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages(request),
            "max_tokens": request.max_tokens,
            "response_format": response_format,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return "/chat/completions", body
