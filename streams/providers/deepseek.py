"""DeepSeek over its OpenAI-compatible API.

Differences from OpenAI that matter here (api-docs.deepseek.com, Chat Completion): no schema
enforcement, only ``json_object`` mode, so the schema goes into the prompt (which must say
"json"); ``max_tokens`` rather than ``max_completion_tokens``; thinking is on by default and
is switched off; blank content means the model's output was not JSON (the base class
treats blank as invalid); 402 is out of credit; cache hits are ``prompt_cache_hit_tokens``.
"""

from __future__ import annotations

from typing import Any

from streams.models import Usage
from streams.providers.base import EnrichRequest
from streams.providers.openai import OpenAIProvider

__all__ = ["DeepSeekProvider"]


class DeepSeekProvider(OpenAIProvider):
    name = "deepseek"
    schema_in_prompt = True

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages(request),
            "thinking": {"type": "disabled"},
            "max_tokens": request.max_tokens,
            "response_format": {"type": "json_object"},
            "stream": False,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        return "/chat/completions", body

    def usage(self, raw: dict[str, Any]) -> Usage:
        usage = super().usage(raw)
        if "prompt_cache_hit_tokens" in raw:
            usage = usage.model_copy(
                update={"cached_input_tokens": int(raw["prompt_cache_hit_tokens"] or 0)}
            )
        return usage
