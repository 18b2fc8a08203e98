"""OpenAI Chat Completions (``POST /chat/completions``), strict ``json_schema`` output.

Prompt caching is automatic from 1,024 prompt tokens; ``prompt_cache_key`` (one per prompt
version) routes the requests sharing the static prefix to the same cache.

DeepSeek speaks the same wire format with a few differences; ``deepseek.py`` subclasses
this adapter and overrides only those.
"""

from __future__ import annotations

from typing import Any

import httpx

from streams.errors import BadRequest, ProviderError, ProviderUnavailable, QuotaExhausted
from streams.models import Usage
from streams.providers.base import Answer, EnrichRequest, Health, Provider
from streams.providers.prompt import conversation, prompt_version, system_prompt
from streams.providers.structured import OPENAI_STRICT, schema_for

__all__ = ["OpenAIProvider"]


def accepts_temperature(model: str) -> bool:
    # Reasoning models (gpt-5 family, o-series) answer 400 to any temperature but 1.
    return model.startswith(("gpt-4", "gpt-3.5"))


class OpenAIProvider(Provider):
    name = "openai"
    # json_schema strict: the vendor enforces the Enrichment schema.
    schema_in_prompt = False

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.config.api_key.get_secret_value()}"}

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self.messages(request),
            "max_completion_tokens": request.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "job_enrichment",
                    "strict": True,
                    "schema": schema_for(OPENAI_STRICT),
                },
            },
        }
        if request.temperature is not None and accepts_temperature(model):
            body["temperature"] = request.temperature
        body["prompt_cache_key"] = f"llm-streams-{prompt_version(request.instructions)}"
        return "/chat/completions", body

    def messages(self, request: EnrichRequest) -> list[dict[str, str]]:
        return [
            {
                "role": "system",
                "content": system_prompt(
                    with_schema=self.schema_in_prompt, instructions=request.instructions
                ),
            },
            *(
                {"role": role, "content": text}
                for role, text in conversation(request.job, request.repair)
            ),
        ]

    def read(self, data: Any, *, status: int) -> Answer:
        choice = data["choices"][0]
        message = choice["message"]
        finish = str(choice.get("finish_reason") or "")
        if message.get("refusal"):
            refusal = self._clean(str(message["refusal"]), limit=200)
            raise self._invalid(f"refused: {refusal}", status=status)
        if finish == "length":
            raise self._invalid(
                "output truncated at the token limit", status=status, truncated=True
            )
        if finish == "content_filter":
            raise self._invalid("output withheld by the content filter", status=status)
        if finish == "insufficient_system_resource":  # DeepSeek: its side ran out
            raise ProviderUnavailable(
                "insufficient system resource", provider=self.name, status_code=status
            )
        return Answer(
            text=message.get("content"),
            finish_reason=finish,
            usage=self.usage_of(data),
            model=data.get("model"),
        )

    def usage_of(self, data: Any) -> Usage:
        return self.usage(data.get("usage") or {})

    def usage(self, raw: dict[str, Any]) -> Usage:
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        return Usage(
            input_tokens=int(raw.get("prompt_tokens") or 0),
            cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
            cache_write_tokens=int(prompt_details.get("cache_write_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            output_tokens=int(raw.get("completion_tokens") or 0),
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        # {"error": {"message", "type", "param", "code"}}
        error = self._error_object(response)
        code = str(error.get("code") or error.get("type") or "")
        text = str(error.get("message") or response.reason_phrase or "no message")
        final: type[ProviderError] | None = None
        if code == "insufficient_quota":  # a 429 that billing, not waiting, clears
            final = QuotaExhausted
        elif response.status_code == 429 and "request too large" in text.lower():
            final = BadRequest  # the request alone exceeds the limit: shrink it
        return self._error(response, f"{code}: {text}" if code else text, final=final)

    async def health(self) -> Health:
        # GET /models is free (no generation) and checks the key and the model name at once.
        try:
            data = await self._get_json("/models")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        models = data.get("data") or []
        if any(isinstance(m, dict) and m.get("id") == self.model for m in models):
            return Health(ok=True, detail=f"model {self.model} available")
        return Health(ok=False, detail=f"model {self.model} is not offered")
