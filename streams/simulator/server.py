"""The provider simulator: vendor wire formats on loopback, with faults on demand.

Served now: OpenAI Chat Completions (``/openai/v1``) and DeepSeek (``/deepseek``). It checks
the key and the request the way the vendor does and answers in the vendor's shapes. Faults
are set per provider at start or at run time through ``PUT /_sim/faults/{provider}``.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from streams.simulator.enrichment import derive_enrichment

DEFAULT_API_KEY = "sim-key"
# provider -> URL prefix under which its API is served
PREFIXES = {"openai": "/openai/v1", "deepseek": "/deepseek"}
ENV_NAMES = {"openai": "OPENAI_BASE_URL", "deepseek": "DEEPSEEK_BASE_URL"}
MODELS = {
    "openai": ["gpt-5.4-mini", "gpt-5.4-nano", "gpt-4.1-mini", "gpt-4o-mini"],
    "deepseek": ["deepseek-v4-flash", "deepseek-v4-pro"],
}


class Faults(BaseModel):
    """What goes wrong, per provider. ``match`` limits the faults to requests whose prompt
    contains that text (so a test can slow down or fail one job)."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: float = Field(default=0, ge=0)
    latency_jitter_ms: float = Field(default=0, ge=0)
    error_rate: float = Field(default=0, ge=0, le=1)
    error_status: int = Field(default=500, ge=400, le=599)
    retry_after_s: float | None = Field(default=None, ge=0)
    malformed_rate: float = Field(default=0, ge=0, le=1)
    match: str | None = None


def _openai_error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


class Simulator:
    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        faults: dict[str, Faults] | None = None,
        seed: int | None = None,
    ) -> None:
        self.api_key = api_key
        self.faults: dict[str, Faults] = {p: Faults() for p in PREFIXES} | (faults or {})
        self.requests: Counter[str] = Counter()
        self._rng = random.Random(seed)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        for provider, prefix in PREFIXES.items():
            app.router.add_post(f"{prefix}/chat/completions", self._chat(provider))
            app.router.add_get(f"{prefix}/models", self._models(provider))
        app.router.add_get("/_sim/faults", self._get_faults)
        app.router.add_put("/_sim/faults/{provider}", self._put_faults)
        app.router.add_delete("/_sim/faults", self._reset_faults)
        app.router.add_get("/_sim/stats", self._stats)
        return app

    # --- the vendor API ------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        return request.headers.get("Authorization", "") == f"Bearer {self.api_key}"

    def _models(self, provider: str) -> Any:
        async def handler(request: web.Request) -> web.Response:
            if not self._authorized(request):
                return self._auth_error(provider)
            data = [{"id": m, "object": "model", "owned_by": provider} for m in MODELS[provider]]
            return web.json_response({"object": "list", "data": data})

        return handler

    def _auth_error(self, provider: str) -> web.Response:
        if provider == "deepseek":
            return _openai_error(
                401, "Authentication Fails, Your api key is invalid", "authentication_error", None
            )
        return _openai_error(
            401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
        )

    def _chat(self, provider: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            self.requests[provider] += 1
            if not self._authorized(request):
                return self._auth_error(provider)
            try:
                body = await request.json()
            except json.JSONDecodeError:
                return _openai_error(
                    400, "We could not parse the JSON body.", "invalid_request_error", None
                )
            problem = _check_chat_request(provider, body)
            if problem:
                return _openai_error(400, problem, "invalid_request_error", "invalid_request")
            prompt = "\n".join(str(m.get("content", "")) for m in body["messages"])
            faults = self.faults[provider]
            applies = faults.match is None or faults.match in prompt
            if applies:
                delay = faults.latency_ms + self._rng.uniform(0, faults.latency_jitter_ms)
                if delay:
                    await asyncio.sleep(delay / 1000)
                if self._rng.random() < faults.error_rate:
                    return _injected_error(faults)
            user = next(
                (str(m["content"]) for m in body["messages"] if m.get("role") == "user"), ""
            )
            content = json.dumps(derive_enrichment(user), ensure_ascii=False)
            if applies and self._rng.random() < faults.malformed_rate:
                content = content[: len(content) // 2]
            return web.json_response(_chat_response(provider, body["model"], prompt, content))

        return handler

    # --- the control API -----------------------------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({p: f.model_dump() for p, f in self.faults.items()})

    async def _put_faults(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in self.faults:
            return web.json_response({"error": f"unknown provider {provider!r}"}, status=404)
        try:
            self.faults[provider] = Faults.model_validate(await request.json())
        except (ValidationError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response(self.faults[provider].model_dump())

    async def _reset_faults(self, request: web.Request) -> web.Response:
        self.faults = {p: Faults() for p in PREFIXES}
        return web.json_response({"reset": True})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response({"requests": dict(self.requests)})


def _check_chat_request(provider: str, body: Any) -> str | None:
    """The vendor's 400 for a request it would reject, or None."""
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "you must provide a model parameter"
    if model not in MODELS[provider]:
        return (
            "Model Not Exist"
            if provider == "deepseek"
            else f"The model `{model}` does not exist or you do not have access to it."
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    if any(not isinstance(m, dict) or "role" not in m or "content" not in m for m in messages):
        return "each message needs a 'role' and 'content'"
    reasoning = provider == "openai" and model.startswith("gpt-5")
    if reasoning and "max_tokens" in body:
        return (
            "Unsupported parameter: 'max_tokens' is not supported with this model. "
            "Use 'max_completion_tokens' instead."
        )
    if reasoning and body.get("temperature", 1) != 1:
        return "Unsupported value: 'temperature' does not support this value with this model."
    response_format = body.get("response_format") or {}
    if provider == "deepseek" and response_format.get("type") == "json_object":
        text = " ".join(str(m.get("content", "")) for m in messages).lower()
        if "json" not in text:
            return "Prompt must contain the word 'json' in some form to use 'response_format'"
    if response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema") or {}
        if not spec.get("name") or not isinstance(spec.get("schema"), dict):
            return "response_format.json_schema needs a name and a schema"
    return None


def _injected_error(faults: Faults) -> web.Response:
    status = faults.error_status
    if status == 429:
        response = _openai_error(
            429,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            "rate_limit_exceeded",
        )
        if faults.retry_after_s is not None:
            response.headers["retry-after"] = f"{faults.retry_after_s:g}"
        return response
    if status >= 500:
        return _openai_error(
            status, "The server had an error processing your request.", "server_error", None
        )
    return _openai_error(status, "Injected client error.", "invalid_request_error", None)


def _chat_response(provider: str, model: str, prompt: str, content: str) -> dict[str, Any]:
    prompt_tokens = _tokens(prompt)
    completion_tokens = _tokens(content)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if provider == "deepseek":
        usage |= {"prompt_cache_hit_tokens": 0, "prompt_cache_miss_tokens": prompt_tokens}
        response_id = str(uuid.uuid4())
    else:
        usage["completion_tokens_details"] = {"reasoning_tokens": 0}
        message |= {"refusal": None, "annotations": []}
        response_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
        "usage": usage,
        "system_fingerprint": "fp_simulator",
    }


async def serve(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port."""
    runner = web.AppRunner(simulator.app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


def base_urls(host: str, port: int) -> dict[str, str]:
    """``{"OPENAI_BASE_URL": "http://127.0.0.1:P/openai/v1", ...}``"""
    return {ENV_NAMES[p]: f"http://{host}:{port}{prefix}" for p, prefix in PREFIXES.items()}
