"""Gemini generateContent (v1beta), as the vendor answers, errors as google.rpc.Status.

Implicit prompt caching (Gemini 2.5 and later): a repeated system instruction of at least the
model's minimum is served from the cache, counted in ``cachedContentTokenCount`` (a part of
``promptTokenCount``), which is left out when nothing was cached.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from llm_sim.dialect import Call, Dialect, tokens
from llm_sim.schema_rules import GEMINI, refused

STATUSES = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
RPC = "type.googleapis.com/google.rpc."
# The shortest prefix implicit caching serves, per model family (ai.google.dev, 2026-10).
CACHE_MINIMUM_TOKENS = {"gemini-2.5": 2048, "gemini-3": 4096}


def google_error(status: int, message: str, details: list[Any] | None = None) -> web.Response:
    error = {"code": status, "message": message, "status": STATUSES.get(status, "UNKNOWN")}
    if details:
        error["details"] = details
    return web.json_response({"error": error}, status=status)


class GeminiDialect(Dialect):
    provider = "gemini"
    prefix = "/gemini"
    env_name = "GEMINI_BASE_URL"
    models: tuple[str, ...] = ("gemini-2.5-flash-lite", "gemini-2.5-flash", "gemini-3.5-flash")

    def routes(self, generate: Any) -> list[web.RouteDef]:
        # The method follows a colon: /v1beta/models/{model}:generateContent
        return [
            web.post(f"{self.prefix}/v1beta/models/{{target:[^/]+}}", generate),
            web.get(f"{self.prefix}/v1beta/models/{{model:[^/:]+}}", self.get_model),
        ]

    def model_info(self, model: str) -> dict[str, Any]:
        return {"name": f"models/{model}", "displayName": model}

    def model_missing(self, model: str) -> web.Response:
        return google_error(404, f"models/{model} is not found for API version v1beta")

    def auth_error(self, request: web.Request) -> web.Response | None:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if key == self.api_key:
            return None
        if not key:
            return google_error(
                403,
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity.",
            )
        return google_error(
            400,
            "API key not valid. Please pass a valid API key.",
            [{"@type": f"{RPC}ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
        )

    def accept(self, request: web.Request, body: Any) -> Call | web.Response:
        model, _, method = request.match_info["target"].partition(":")
        if method != "generateContent":
            return google_error(404, f"method {method or '(none)'} is not found")
        return self.accept_body(body, model=model)

    def accept_body(self, body: Any, *, model: str | None) -> Call | web.Response:
        if not isinstance(body, dict):
            return google_error(400, "Invalid JSON payload received.")
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            return google_error(400, "* GenerateContentRequest.contents: contents is not specified")
        config = body.get("generationConfig") or {}
        if "responseJsonSchema" in config and "responseSchema" in config:
            return google_error(
                400, "responseSchema must be omitted when responseJsonSchema is set"
            )
        if "responseJsonSchema" in config and config.get("responseMimeType") != "application/json":
            return google_error(
                400, "responseJsonSchema requires responseMimeType application/json"
            )
        found = refused(config.get("responseJsonSchema"), GEMINI)
        if found:
            where, keyword = found
            return google_error(
                400,
                f'Invalid JSON payload received. Unknown name "{keyword}" at '
                f"'generation_config.response_json_schema{''.join(f'.{w}' for w in where)}'",
            )
        if model is None or model not in self.models:
            return self.model_missing(str(model))
        users = [c for c in contents if isinstance(c, dict) and c.get("role", "user") == "user"]
        user = "\n".join(  # the job: the first user turn (a later one is a follow-up)
            str(part.get("text", ""))
            for part in (users[0].get("parts") or [] if users else [])
            if isinstance(part, dict)
        )
        system = " ".join(
            str(p.get("text", "")) for p in (body.get("systemInstruction") or {}).get("parts", [])
        )
        return Call(
            model=model,
            body=body,
            prompt=f"{system}\n{user}",
            user_text=user,
            cache_prefix=system,
            follow_up=self.follows_up(contents),
            max_tokens=config.get("maxOutputTokens"),
        )

    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        if status == 429:
            details: list[Any] = [
                {
                    "@type": f"{RPC}QuotaFailure",
                    "violations": [
                        {
                            "quotaMetric": "generativelanguage.googleapis.com/"
                            "generate_content_paid_tier_input_token_count",
                            "quotaId": "GenerateContentPaidTierInputTokensPerModelPerMinute",
                        }
                    ],
                }
            ]
            if retry_after_s is not None:
                details.append({"@type": f"{RPC}RetryInfo", "retryDelay": f"{retry_after_s:g}s"})
            return google_error(429, "You exceeded your current quota.", details)
        return google_error(status, "Injected error.")

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        prompt_tokens = tokens(call.prompt)
        output_tokens = tokens(content)
        minimum = next(
            n for family, n in CACHE_MINIMUM_TOKENS.items() if call.model.startswith(family)
        )
        cached, _ = self.cache.lookup(call.model, call.cache_prefix, minimum_tokens=minimum)
        usage: dict[str, Any] = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": prompt_tokens + output_tokens,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt_tokens}],
        }
        if cached:
            usage["cachedContentTokenCount"] = cached
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        return web.json_response(
            {
                "candidates": [
                    {
                        "content": {"parts": [{"text": content}], "role": "model"},
                        "finishReason": "MAX_TOKENS" if truncated else "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": usage,
                "modelVersion": call.model,
                "responseId": uuid.uuid4().hex[:18],
            }
        )
