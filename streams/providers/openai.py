"""OpenAI Chat Completions (``POST /chat/completions``), strict ``json_schema`` output.

DeepSeek speaks the same wire format with a few differences; ``deepseek.py`` subclasses
this adapter and overrides only those.
"""

from __future__ import annotations

from typing import Any

import httpx

from streams.errors import (
    AuthenticationError,
    BadRequest,
    InvalidOutput,
    ProviderError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from streams.models import Usage
from streams.providers.base import (
    Completion,
    EnrichRequest,
    Health,
    Provider,
    retry_after_s,
)
from streams.providers.prompt import system_prompt, user_message
from streams.schemas import enrichment_schema


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

    def request_body(self, request: EnrichRequest, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": model,
            "messages": self._messages(request),
            "max_completion_tokens": request.max_tokens,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": "job_enrichment",
                    "strict": True,
                    "schema": enrichment_schema(),
                },
            },
        }
        if request.temperature is not None and accepts_temperature(model):
            body["temperature"] = request.temperature
        return body

    def _messages(self, request: EnrichRequest) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": system_prompt(with_schema=self.schema_in_prompt)},
            {"role": "user", "content": user_message(request.job)},
        ]

    async def enrich(self, request: EnrichRequest, *, timeout_s: float) -> Completion:
        model = request.model or self.model
        response = await self._send(
            "POST",
            "/chat/completions",
            timeout_s=timeout_s,
            body=self.request_body(request, model),
        )
        if response.status_code != 200:
            raise self.error_for(response)
        return self._completion(self._json_body(response), model, response.status_code)

    def _completion(self, data: Any, model: str, status: int) -> Completion:
        try:
            choice = data["choices"][0]
            message = choice["message"]
        except (KeyError, IndexError, TypeError):
            raise ProviderUnavailable(
                "answer has no choices[0].message", provider=self.name, status_code=status
            ) from None
        finish = str(choice.get("finish_reason") or "")
        if message.get("refusal"):
            raise InvalidOutput(
                f"refused: {self._clean(str(message['refusal']), limit=200)}",
                provider=self.name,
                status_code=status,
            )
        self.check_finish_reason(finish, status)
        enrichment = self._parse_enrichment(message.get("content"), status=status)
        usage = self.usage(data.get("usage") or {})
        usage = usage.model_copy(update={"cost_usd": self.cost_usd(model, usage)})
        return Completion(
            enrichment=enrichment,
            model=str(data.get("model") or model),
            finish_reason=finish,
            usage=usage,
            http_status=status,
        )

    def check_finish_reason(self, finish: str, status: int) -> None:
        if finish == "length":
            raise InvalidOutput(
                "output truncated at the token limit", provider=self.name, status_code=status
            )
        if finish == "content_filter":
            raise InvalidOutput(
                "output withheld by the content filter", provider=self.name, status_code=status
            )

    def usage(self, raw: dict[str, Any]) -> Usage:
        prompt_details = raw.get("prompt_tokens_details") or {}
        completion_details = raw.get("completion_tokens_details") or {}
        return Usage(
            input_tokens=int(raw.get("prompt_tokens") or 0),
            cached_input_tokens=int(prompt_details.get("cached_tokens") or 0),
            reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
            output_tokens=int(raw.get("completion_tokens") or 0),
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        """Map a non-200 answer onto the error taxonomy (shared reference providers.md §6)."""
        status = response.status_code
        try:
            error = response.json().get("error") or {}
        except ValueError:
            error = {}
        if not isinstance(error, dict):
            error = {"message": str(error)}
        code = str(error.get("code") or error.get("type") or "")
        text = self._clean(str(error.get("message") or response.reason_phrase or "no message"))
        message = f"{code}: {text}" if code else text
        kwargs: dict[str, Any] = {"provider": self.name, "status_code": status}
        delay = retry_after_s(response.headers)

        should_retry = response.headers.get("x-should-retry")
        if should_retry == "true":
            return ProviderUnavailable(message, retry_after_s=delay, **kwargs)
        if status in (401, 403):
            return AuthenticationError(message, **kwargs)
        if status == 402 or code == "insufficient_quota":
            return QuotaExhausted(message, **kwargs)
        if status == 429 and "request too large" in text.lower():
            return BadRequest(message, **kwargs)
        if should_retry == "false":
            return BadRequest(message, **kwargs)
        if status == 429:
            return RateLimited(message, retry_after_s=delay, **kwargs)
        if status in (408, 409) or status >= 500:
            return ProviderUnavailable(message, retry_after_s=delay, **kwargs)
        return BadRequest(message, **kwargs)

    async def health(self) -> Health:
        # GET /models is free (no generation) and checks the key and the model name at once.
        try:
            response = await self._send("GET", "/models", timeout_s=5.0)
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        if response.status_code != 200:
            return Health(ok=False, detail=str(self.error_for(response)))
        data = self._json_body(response).get("data") or []
        if any(isinstance(m, dict) and m.get("id") == self.model for m in data):
            return Health(ok=True, detail=f"model {self.model} available")
        return Health(ok=False, detail=f"model {self.model} is not offered")
