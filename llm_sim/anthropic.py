"""Anthropic Messages, as the vendor answers: output_config JSON or a forced tool call.

Prompt caching is opt-in: ``cache_control`` ({"type": "ephemeral"}, ``ttl`` "5m" or "1h") on
at most 4 blocks, or once at the top level (the last block). The prompt up to the last marked
block is written to the cache on first use and read from it afterwards, once it is at least
the model's minimum; usage counts reads and writes apart from ``input_tokens``.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from llm_sim.dialect import Call, Dialect, tokens
from llm_sim.schema_rules import ANTHROPIC, refused

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str) -> web.Response:
    body = {
        "type": "error",
        "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        "request_id": f"req_{uuid.uuid4().hex[:24]}",
    }
    return web.json_response(body, status=status)


MAX_CACHE_BREAKPOINTS = 4
# The shortest prefix each model caches; a shorter one is silently not cached.
CACHE_MINIMUM_TOKENS = {
    "claude-haiku-4-5": 4096,
    "claude-sonnet-4-6": 2048,
    "claude-opus-4-7": 2048,
    "claude-sonnet-4-0": 1024,
}


def _cache_control_error(value: Any) -> str | None:
    if not isinstance(value, dict) or value.get("type") != "ephemeral":
        return "cache_control: type must be 'ephemeral'"
    extra = set(value) - {"type", "ttl"}
    if extra:
        return f"cache_control.{sorted(extra)[0]}: Extra inputs are not permitted"
    if value.get("ttl", "5m") not in ("5m", "1h"):
        return "cache_control.ttl: Input should be '5m' or '1h'"
    return None


def _system_blocks(system: Any) -> list[dict[str, Any]] | str:
    """The system prompt as text blocks, or the error for a malformed one."""
    if system is None:
        return []
    if isinstance(system, str):
        return [{"type": "text", "text": system}]
    if not isinstance(system, list):
        return "system: Input should be a valid string or a list of text blocks"
    for block in system:
        if not isinstance(block, dict) or block.get("type") != "text":
            return "system: each block must be a text block"
        if not isinstance(block.get("text"), str) or not block["text"]:
            return "system: text blocks must be non-empty"
    return system


class AnthropicDialect(Dialect):
    provider = "anthropic"
    prefix = "/anthropic"
    env_name = "ANTHROPIC_BASE_URL"
    models: tuple[str, ...] = (
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-7",
        "claude-sonnet-4-0",
    )

    def routes(self, generate: Any) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/v1/messages", generate),
            web.get(f"{self.prefix}/v1/models/{{model}}", self.get_model),
        ]

    def model_info(self, model: str) -> dict[str, Any]:
        return {"type": "model", "id": model, "display_name": model}

    def model_missing(self, model: str) -> web.Response:
        return anthropic_error(404, f"model: {model}")

    def auth_error(self, request: web.Request) -> web.Response | None:
        if request.headers.get("x-api-key") != self.api_key:
            return anthropic_error(401, "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return anthropic_error(400, "anthropic-version: header is required")
        return None

    def accept_body(self, body: Any, *, model: str | None) -> Call | web.Response:
        if not isinstance(body, dict):
            return anthropic_error(400, "request body must be a JSON object")
        for field in ("model", "max_tokens", "messages"):
            if field not in body:
                return anthropic_error(400, f"{field}: Field required")
        model, messages = body["model"], body["messages"]
        if not isinstance(body["max_tokens"], int) or body["max_tokens"] < 1:
            return anthropic_error(400, "max_tokens: must be a positive integer")
        if not isinstance(messages, list) or not messages:
            return anthropic_error(400, "messages: at least one message is required")
        if any(isinstance(m, dict) and m.get("role") == "system" for m in messages):
            return anthropic_error(
                400,
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.',
            )
        if model not in self.models:
            return self.model_missing(model)
        problem = self._check_sampling(model, body)
        if problem:
            return anthropic_error(400, problem)
        found = refused(
            ((body.get("output_config") or {}).get("format") or {}).get("schema"), ANTHROPIC
        )
        if found:
            where, keyword = found
            return anthropic_error(
                400,
                f"output_config.format.schema: '{keyword}' is not supported in structured "
                f"outputs (at {'.'.join(where) or 'the root'})",
            )
        system = _system_blocks(body.get("system"))
        if isinstance(system, str):
            return anthropic_error(400, system)
        marked = [b for b in [*system, *(body.get("tools") or [])] if "cache_control" in b]
        if "cache_control" in body:
            marked.append(body)
        for holder in marked:
            problem = _cache_control_error(holder["cache_control"])
            if problem:
                return anthropic_error(400, problem)
        if len(marked) > MAX_CACHE_BREAKPOINTS:
            return anthropic_error(
                400,
                f"A maximum of {MAX_CACHE_BREAKPOINTS} blocks with cache_control may be "
                f"provided. Found {len(marked)}.",
            )
        user = self.user_text(messages)
        system_text = "".join(b["text"] for b in system)
        texts = [b["text"] for b in system]
        last = max((i for i, b in enumerate(system) if "cache_control" in b), default=-1)
        prefix = "".join(texts[: last + 1])
        if "cache_control" in body:  # automatic: up to the last block, the job text included
            prefix = f"{system_text}\n{user}"
        return Call(
            model=model,
            body=body,
            prompt=f"{system_text}\n{user}",
            user_text=user,
            cache_prefix=prefix,
            follow_up=self.follows_up(messages),
            max_tokens=body.get("max_tokens"),
        )

    def _check_sampling(self, model: str, body: dict[str, Any]) -> str | None:
        temperature = body.get("temperature")
        if temperature is not None and model.startswith("claude-opus-4-7"):
            return "`temperature` is deprecated for this model."
        if temperature is not None and not 0 <= temperature <= 1:
            return "temperature: range: 0 <= temperature <= 1"
        if temperature is not None and "top_p" in body and "4-5" in model:
            return "`temperature` and `top_p` cannot both be specified for this model."
        return None

    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        message = {529: "Overloaded", 429: "Number of request tokens has exceeded your rate limit."}
        response = anthropic_error(status, message.get(status, "Injected error"))
        return self.with_retry_after(response, retry_after_s)

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        choice = call.body.get("tool_choice") or {}
        tool_forced = choice.get("type") == "tool"
        block: dict[str, Any]
        try:
            tool_input = json.loads(content) if tool_forced and not truncated else None
        except json.JSONDecodeError:
            tool_input = None
        if isinstance(tool_input, dict):
            block = {
                "type": "tool_use",
                "id": f"toolu_{uuid.uuid4().hex[:24]}",
                "name": choice.get("name"),
                "input": tool_input,
            }
            stop = "tool_use"
        else:
            block = {"type": "text", "text": content}
            stop = "max_tokens" if truncated else "end_turn"
        read, written = self.cache.lookup(
            call.model,
            call.cache_prefix,
            minimum_tokens=CACHE_MINIMUM_TOKENS.get(call.model, 1024),
        )
        one_hour = any(
            (b.get("cache_control") or {}).get("ttl") == "1h"
            for b in _system_blocks(call.body.get("system"))
            if isinstance(b, dict)
        )
        return web.json_response(
            {
                "id": f"msg_{uuid.uuid4().hex[:24]}",
                "type": "message",
                "role": "assistant",
                "model": call.model,
                "content": [block],
                "stop_reason": stop,
                "stop_sequence": None,
                "usage": {
                    # the tokens after the last breakpoint: reads and writes are apart
                    "input_tokens": tokens(call.prompt) - read - written,
                    "output_tokens": tokens(content),
                    "cache_creation_input_tokens": written,
                    "cache_read_input_tokens": read,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 0 if one_hour else written,
                        "ephemeral_1h_input_tokens": written if one_hour else 0,
                    },
                    "service_tier": "standard",
                },
            }
        )
