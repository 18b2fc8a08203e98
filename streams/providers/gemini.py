"""Google Gemini ``generateContent`` (Generative Language API v1beta).

Structured output: ``responseMimeType: application/json`` with ``responseJsonSchema`` (real
JSON Schema, so the one schema serves every provider). Errors are google.rpc.Status bodies;
the retry delay lives in ``details[RetryInfo].retryDelay`` (ai.google.dev, generateContent).
"""

from __future__ import annotations

from typing import Any

import httpx

from streams.errors import AuthenticationError, ProviderError, QuotaExhausted
from streams.models import Usage
from streams.providers.base import Answer, EnrichRequest, Health, Provider, duration_s
from streams.providers.prompt import conversation, system_prompt
from streams.providers.structured import GEMINI, schema_for

__all__ = ["GeminiProvider"]

# Finish reasons that mean the answer was withheld, not cut short.
BLOCKED = {
    "SAFETY",
    "RECITATION",
    "LANGUAGE",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
}
DETAIL = "type.googleapis.com/google.rpc."


class GeminiProvider(Provider):
    name = "gemini"

    def auth_headers(self) -> dict[str, str]:
        if self.config.api_key is None:
            return {}
        return {"x-goog-api-key": self.config.api_key.get_secret_value()}

    def build(self, request: EnrichRequest, model: str) -> tuple[str, dict[str, Any]]:
        config: dict[str, Any] = {
            "maxOutputTokens": request.max_tokens,
            "responseMimeType": "application/json",
            "responseJsonSchema": schema_for(GEMINI),
        }
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if model.startswith("gemini-2.5-flash"):
            # Thinking tokens count against maxOutputTokens and can leave no answer at all.
            config["thinkingConfig"] = {"thinkingBudget": 0}
        body = {
            "systemInstruction": {
                "parts": [
                    {"text": system_prompt(with_schema=False, instructions=request.instructions)}
                ]
            },
            "contents": [
                {"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]}
                for role, text in conversation(request.job, request.repair)
            ],
            "generationConfig": config,
        }
        return f"/v1beta/models/{model}:generateContent", body

    def read(self, data: Any, *, status: int) -> Answer:
        candidates = data.get("candidates") or []
        if not candidates:
            reason = (data.get("promptFeedback") or {}).get("blockReason") or "no candidates"
            raise self._invalid(f"prompt blocked: {reason}", status=status)
        candidate = candidates[0]
        finish = str(candidate.get("finishReason") or "")
        if finish == "MAX_TOKENS":
            raise self._invalid(
                "output truncated at maxOutputTokens", status=status, truncated=True
            )
        if finish in BLOCKED:
            raise self._invalid(f"answer withheld: {finish}", status=status)
        parts = (candidate.get("content") or {}).get("parts") or []
        text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
        return Answer(
            text=text,
            finish_reason=finish,
            usage=self.usage_of(data),
            model=data.get("modelVersion"),
        )

    def usage_of(self, data: Any) -> Usage:
        raw = data.get("usageMetadata") or {}
        thoughts = int(raw.get("thoughtsTokenCount") or 0)
        return Usage(
            input_tokens=int(raw.get("promptTokenCount") or 0),
            cached_input_tokens=int(raw.get("cachedContentTokenCount") or 0),
            reasoning_tokens=thoughts,
            # thinking is billed as output
            output_tokens=int(raw.get("candidatesTokenCount") or 0) + thoughts,
        )

    def error_for(self, response: httpx.Response) -> ProviderError:
        # {"error": {"code", "message", "status", "details": [...]}}
        error = self._error_object(response)
        state = str(error.get("status") or "")
        text = str(error.get("message") or response.reason_phrase or "no message")
        details = [d for d in error.get("details") or [] if isinstance(d, dict)]
        reasons = {d.get("reason") for d in details if d.get("@type") == f"{DETAIL}ErrorInfo"}
        quota_ids = [
            str(v.get("quotaId", ""))
            for d in details
            if d.get("@type") == f"{DETAIL}QuotaFailure"
            for v in d.get("violations") or []
        ]
        delay = next(
            (
                duration_s(d.get("retryDelay"))
                for d in details
                if d.get("@type") == f"{DETAIL}RetryInfo"
            ),
            None,
        )
        final: type[ProviderError] | None = None
        if "API_KEY_INVALID" in reasons or "API key not valid" in text:
            final = AuthenticationError  # a bad key is a 400 here, not a 401
        elif state == "FAILED_PRECONDITION" or any("PerDay" in q for q in quota_ids):
            final = QuotaExhausted  # billing, region, or a daily quota: waiting won't help
        message = f"{state}: {text}" if state else text
        return self._error(response, message, retry_after=delay, final=final)

    async def health(self) -> Health:
        # GET /v1beta/models/{model} is free and checks the key and the model name.
        try:
            data = await self._get_json(f"/v1beta/models/{self.model}")
        except ProviderError as exc:
            return Health(ok=False, detail=str(exc))
        return Health(ok=True, detail=f"{data.get('name', self.model)} available")
