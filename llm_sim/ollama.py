"""Ollama's /api/chat (streaming NDJSON by default), /api/version and /api/tags.

A local Ollama takes no key, so neither does this one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from llm_sim.dialect import Call, Dialect, tokens

VERSION = "0.12.6"


def ollama_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class OllamaDialect(Dialect):
    provider = "ollama"
    prefix = "/ollama"
    env_name = "OLLAMA_BASE_URL"
    models: tuple[str, ...] = ("llama3.2:latest", "qwen3:8b")

    def routes(self, generate: Any) -> list[web.RouteDef]:
        return [
            web.post(f"{self.prefix}/api/chat", generate),
            web.get(f"{self.prefix}/api/version", self._version),
            web.get(f"{self.prefix}/api/tags", self._tags),
        ]

    async def _version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    async def _tags(self, request: web.Request) -> web.Response:
        models = [
            {
                "name": m,
                "model": m,
                "modified_at": "2026-11-01T10:00:00Z",
                "size": 2019393189,
                "digest": "a80c4f17acd5" + "0" * 52,
                "details": {"format": "gguf", "family": m.split(":")[0]},
            }
            for m in self.models
        ]
        return web.json_response({"models": models})

    def auth_error(self, request: web.Request) -> web.Response | None:
        return None

    def accept_body(self, body: Any, *, model: str | None) -> Call | web.Response:
        if not isinstance(body, dict):
            return ollama_error(400, "invalid request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return ollama_error(400, "model is required")
        full = model if ":" in model else f"{model}:latest"
        if full not in self.models:
            return ollama_error(404, f"model '{model}' not found")
        messages = body.get("messages") or []
        if not isinstance(messages, list):
            return ollama_error(400, "messages must be an array")
        prompt = "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
        return Call(
            model=model,
            body=body,
            prompt=prompt,
            user_text=self.user_text(messages),
            follow_up=self.follows_up(messages),
            max_tokens=(body.get("options") or {}).get("num_predict"),
        )

    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        messages = {429: "too many requests", 404: "model not found", 502: "upstream unreachable"}
        response = ollama_error(status, messages.get(status, "injected error"))
        return self.with_retry_after(response, retry_after_s)

    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        final = {
            "model": call.model,
            "created_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "message": {"role": "assistant", "content": content},
            "done": True,
            "done_reason": "length" if truncated else "stop",
            "total_duration": 2_254_970_291,
            "load_duration": 574_751_416,
            "prompt_eval_count": tokens(call.prompt),
            "prompt_eval_duration": 1_502_000_000,
            "eval_count": tokens(content),
            "eval_duration": 175_000_000,
        }
        if call.body.get("stream", True) is False:
            return web.json_response(final)
        # Streaming, the default: one NDJSON line per chunk, the last with the totals.
        chunk = {
            "model": call.model,
            "created_at": final["created_at"],
            "message": {"role": "assistant", "content": content},
            "done": False,
        }
        final["message"] = {"role": "assistant", "content": ""}
        body = "\n".join(json.dumps(line) for line in (chunk, final)) + "\n"
        return web.Response(text=body, content_type="application/x-ndjson")
