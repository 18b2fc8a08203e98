"""OpenAI Chat Completions and DeepSeek's OpenAI-compatible variant, as the vendors answer.

Prompt caching is automatic on both: OpenAI serves a prefix of 1,024 tokens or more from its
cache in 128-token increments (models before gpt-5.6), counted in
``prompt_tokens_details.cached_tokens``; DeepSeek in 64-token units, as
``prompt_cache_hit_tokens`` (with ``prompt_cache_miss_tokens`` the rest of the prompt).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from llm_sim.dialect import Call, Dialect, tokens
from llm_sim.schema_rules import OPENAI_STRICT, not_strict, refused


def openai_error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


class OpenAIDialect(Dialect):
    provider = "openai"
    prefix = "/openai/v1"
    env_name = "OPENAI_BASE_URL"
    models: tuple[str, ...] = ("gpt-5.4-mini", "gpt-5.4-nano", "gpt-4.1-mini", "gpt-4o-mini")
    cache_unit_tokens = 128
    cache_minimum_tokens = 1024
    # Strict json_schema takes a subset of JSON Schema and refuses the rest.
    strict_subset = True

    def routes(self, generate: Any) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/chat/completions", generate),
            web.get(f"{self.prefix}/models", self._list_models),
        ]

    async def _list_models(self, request: web.Request) -> web.Response:
        denied = self.auth_error(request)
        if denied is not None:
            return denied
        data = [{"id": m, "object": "model", "owned_by": self.provider} for m in self.models]
        return web.json_response({"object": "list", "data": data})

    def auth_error(self, request: web.Request) -> web.Response | None:
        presented = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if presented == self.api_key:
            return None
        # OpenAI quotes the key it was given (masked); quoting it whole is the harder test
        # of the adapters' redaction.
        return openai_error(
            401,
            f"Incorrect API key provided: {presented}.",
            "invalid_request_error",
            "invalid_api_key",
        )

    def bad_request(self, message: str) -> web.Response:
        return openai_error(400, message, "invalid_request_error", None)

    def unknown_model(self, model: str) -> web.Response:
        return openai_error(
            404,
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )

    def accept_body(self, body: Any, *, model: str | None) -> Call | web.Response:
        if not isinstance(body, dict):
            return self.bad_request("The request body must be a JSON object.")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return self.bad_request("you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.bad_request("'messages' must be a non-empty array")
        if any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in messages):
            return self.bad_request("each message needs a 'role' and 'content'")
        if not self.serves(model):
            return self.unknown_model(model)
        problem = self.check_parameters(model, body, messages)
        if problem:
            return self.bad_request(problem)
        contents = [str(m.get("content", "")) for m in messages]
        return Call(
            model=model,
            body=body,
            prompt="\n".join(contents),
            user_text=self.user_text(messages),
            cache_prefix="\n".join(contents[:-1]),  # all but the newest message
            follow_up=self.follows_up(messages),
            max_tokens=body.get("max_completion_tokens") or body.get("max_tokens"),
        )

    def serves(self, model: str) -> bool:
        return model in self.models

    def check_parameters(self, model: str, body: dict[str, Any], messages: list[Any]) -> str | None:
        key = body.get("prompt_cache_key")
        if key is not None and not isinstance(key, str):
            return (
                f"Invalid type for 'prompt_cache_key': expected a string, but got "
                f"{type(key).__name__} instead."
            )
        reasoning = model.startswith("gpt-5")
        if reasoning and "max_tokens" in body:
            return (
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead."
            )
        if reasoning and body.get("temperature", 1) != 1:
            return "Unsupported value: 'temperature' does not support this value with this model."
        response_format = body.get("response_format") or {}
        if response_format.get("type") == "json_schema":
            return self.check_schema(response_format.get("json_schema") or {})
        return None

    def check_schema(self, spec: dict[str, Any]) -> str | None:
        if not spec.get("name") or not isinstance(spec.get("schema"), dict):
            return "response_format.json_schema needs a name and a schema"
        if spec.get("strict") is not True or not self.strict_subset:
            return None
        found = refused(spec["schema"], OPENAI_STRICT)
        if found:
            where, keyword = found
            problem = f"'{keyword}' is not permitted"
        elif found := not_strict(spec["schema"]):
            where, problem = found
        else:
            return None
        return (
            f"Invalid schema for response_format '{spec['name']}': In context={where}, {problem}."
        )

    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        if status == 429:
            response = openai_error(
                429,
                "Rate limit reached for requests. Please try again later.",
                "requests",
                "rate_limit_exceeded",
            )
        elif status >= 500:
            response = openai_error(
                status, "The server had an error processing your request.", "server_error", None
            )
        elif status in (401, 403):
            response = openai_error(status, "Injected auth error.", "invalid_request_error", None)
        else:
            response = openai_error(status, "Injected client error.", "invalid_request_error", None)
        return self.with_retry_after(response, retry_after_s)

    def cached_tokens(self, call: Call) -> int:
        read, _ = self.cache.lookup(
            call.model, call.cache_prefix, minimum_tokens=self.cache_minimum_tokens
        )
        return read

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        prompt_tokens = tokens(call.prompt)
        completion_tokens = tokens(content)
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            # sent even when nothing was cached
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens(call), "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        message: dict[str, Any] = {
            "role": "assistant",
            "content": content,
            "refusal": None,
            "annotations": [],
        }
        return web.json_response(
            self.envelope(call, message, usage, "length" if truncated else "stop")
        )

    def envelope(
        self, call: Call, message: dict[str, Any], usage: dict[str, Any], finish: str
    ) -> dict[str, Any]:
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": call.model,
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_simulator",
        }


class DeepSeekDialect(OpenAIDialect):
    provider = "deepseek"
    prefix = "/deepseek"
    env_name = "DEEPSEEK_BASE_URL"
    models: tuple[str, ...] = ("deepseek-v4-flash", "deepseek-v4-pro")
    cache_unit_tokens = 64
    cache_minimum_tokens = 64

    def auth_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization", "") == f"Bearer {self.api_key}":
            return None
        return openai_error(
            401, "Authentication Fails, Your api key is invalid", "authentication_error", None
        )

    def unknown_model(self, model: str) -> web.Response:
        return self.bad_request("Model Not Exist")

    def check_parameters(self, model: str, body: dict[str, Any], messages: list[Any]) -> str | None:
        if (body.get("response_format") or {}).get("type") == "json_object":
            text = " ".join(str(m.get("content", "")) for m in messages).lower()
            if "json" not in text:
                return "Prompt must contain the word 'json' in some form to use 'response_format'"
        return None

    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        if status == 402:
            return openai_error(
                402, "Insufficient Balance", "unknown_error", "invalid_request_error"
            )
        if status == 503:
            response = openai_error(503, "Server Overloaded", "server_error", None)
            return self.with_retry_after(response, retry_after_s)
        return super().error(status, retry_after_s=retry_after_s)

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        prompt_tokens = tokens(call.prompt)
        completion_tokens = tokens(content)
        hit = self.cached_tokens(call)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": hit},
            "prompt_cache_hit_tokens": hit,
            "prompt_cache_miss_tokens": prompt_tokens - hit,
        }
        message = {"role": "assistant", "content": content}
        body = self.envelope(call, message, usage, "length" if truncated else "stop")
        body["id"] = str(uuid.uuid4())
        del body["service_tier"]
        return web.json_response(body)


class CompatibleDialect(OpenAIDialect):
    """An OpenAI-compatible server as llama.cpp's and vLLM's answer: any model name it is
    asked for (llama.cpp serves the one it loaded whatever the name), no key unless one was
    set, ``max_tokens``, ``json_schema`` or ``json_object``, and OpenAI's usage fields only
    (no prompt cache details)."""

    provider = "compatible"
    prefix = "/compatible/v1"
    env_name = "COMPATIBLE_BASE_URL"
    models: tuple[str, ...] = ("local",)
    # llama.cpp's grammar takes any schema and leaves out what it cannot enforce
    # (uniqueItems); vLLM's and SGLang's decoders likewise.
    strict_subset = False

    def auth_error(self, request: web.Request) -> web.Response | None:
        presented = request.headers.get("Authorization")
        if presented is None or presented == f"Bearer {self.api_key}":
            return None
        return openai_error(401, "Invalid API Key", "authentication_error", None)

    def serves(self, model: str) -> bool:
        return True

    def check_parameters(self, model: str, body: dict[str, Any], messages: list[Any]) -> str | None:
        if "max_completion_tokens" in body:
            return "Unsupported parameter: 'max_completion_tokens'; use 'max_tokens'"
        if "prompt_cache_key" in body:
            return "Unsupported parameter: 'prompt_cache_key'"
        return super().check_parameters(model, body, messages)

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        prompt_tokens, completion_tokens = tokens(call.prompt), tokens(content)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        message = {"role": "assistant", "content": content}
        return web.json_response(
            self.envelope(call, message, usage, "length" if truncated else "stop")
        )
