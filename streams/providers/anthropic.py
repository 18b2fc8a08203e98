"""Anthropic Messages (``POST /v1/messages``).

Structured output: ``output_config.format`` (JSON schema, generally available) on the models
that support it, and a forced tool elsewhere: one tool whose ``input_schema`` is the
Enrichment schema, required through ``tool_choice`` (docs.anthropic.com, Messages API).

Prompt caching: a ``cache_control`` breakpoint on the system block caches the tools and the
system prompt (Anthropic's prefix order). Usage counts cache reads and writes apart from
``input_tokens``; writes cost 1.25x input, reads 0.1x.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from streams.errors import BadRequest, ProviderError
from streams.models import Usage
from streams.providers.base import Answer, EnrichRequest, Health, Provider
from streams.providers.prompt import conversation, system_prompt
from streams.providers.structured import ANTHROPIC, schema_for

__all__ = ["AnthropicProvider"]

API_VERSION = "2023-06-01"
TOOL_NAME = "record_enrichment"
# Models with generally available structured outputs (output_config.format).
STRUCTURED_OUTPUT_MODELS = (
    "claude-haiku-4-5",
    "claude-sonnet-4-5",
    "claude-sonnet-4-6",
    "claude-opus-4-5",
    "claude-opus-4-6",
)
# Opus 4.7 and later answer 400 "temperature is deprecated for this model".
NO_TEMPERATURE_MODELS = ("claude-opus-4-7", "claude-opus-4-8", "claude-opus-5", "claude-fable")


def uses_output_config(model: str) -> bool:
    return model.startswith(STRUCTURED_OUTPUT_MODELS)


class AnthropicProvider(Provider):
    name = "anthropic"

    def auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self.config.api_key is not None:
            headers["x-api-key"] = self.config.api_key.get_secret_value()
        return headers

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": model,
            "max_tokens": request.max_tokens,
            "system": [
                {
                    "type": "text",
                    "text": system_prompt(with_schema=False, instructions=request.instructions),
                    "cache_control": {"type": "ephemeral"},
                }
            ],
            "messages": [
                {"role": role, "content": text}
                for role, text in conversation(request.job, request.repair)
            ],
        }
        if uses_output_config(model):
            body["output_config"] = {
                "format": {"type": "json_schema", "schema": schema_for(ANTHROPIC)}
            }
        else:
            body["tools"] = [
                {
                    "name": TOOL_NAME,
                    "description": "Record the structured enrichment of a job posting.",
                    "input_schema": schema_for(ANTHROPIC),
                }
            ]
            body["tool_choice"] = {"type": "tool", "name": TOOL_NAME}
        if request.temperature is not None and not model.startswith(NO_TEMPERATURE_MODELS):
            body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0-1
        return "/v1/messages", body

    def read(self, data: Any, *, status: int) -> Answer:
        stop = str(data.get("stop_reason") or "")
        if stop == "refusal":
            raise self._invalid("refused by the model", status=status)
        if stop == "max_tokens":
            raise self._invalid("output truncated at max_tokens", status=status, truncated=True)
        if stop == "model_context_window_exceeded":
            raise self._invalid("context window exceeded", status=status)
        blocks = data["content"]
        tool_inputs = [b["input"] for b in blocks if b.get("type") == "tool_use"]
        if tool_inputs:
            text: str | None = json.dumps(tool_inputs[0])
        else:
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        return Answer(
            text=text, finish_reason=stop, usage=self.usage_of(data), model=data.get("model")
        )

    def usage_of(self, data: Any) -> Usage:
        raw = data.get("usage") or {}
        cache_read = int(raw.get("cache_read_input_tokens") or 0)
        cache_write = int(raw.get("cache_creation_input_tokens") or 0)
        # Anthropic counts cached tokens outside input_tokens; Usage counts them inside.
        return Usage(
            input_tokens=int(raw.get("input_tokens") or 0) + cache_read + cache_write,
            cached_input_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=int(raw.get("output_tokens") or 0),
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        # {"type": "error", "error": {"type", "message"}, "request_id"}; 529 is overload.
        error = self._error_object(response)
        kind = str(error.get("type") or "")
        text = str(error.get("message") or response.reason_phrase or "no message")
        final = BadRequest if response.status_code == 413 else None
        return self._error(response, f"{kind}: {text}" if kind else text, final=final)

    async def health(self) -> Health:
        # GET /v1/models/{model} is free and checks the key and the model name.
        try:
            data = await self._get_json(f"/v1/models/{self.model}")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail=f"model {data.get('id', self.model)} available")
