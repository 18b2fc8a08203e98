"""The contract of one simulated vendor API: how it checks a request, and how it shapes
answers and errors. ``server.py`` runs the same flow for every dialect."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from aiohttp import web


def tokens(text: str) -> int:
    """A plausible token count: about four characters a token."""
    return max(1, math.ceil(len(text) / 4))


@dataclass(frozen=True, kw_only=True)
class Call:
    """A generation request the dialect has accepted."""

    model: str
    body: dict[str, Any]
    prompt: str  # everything the model is shown, for token counts and fault matching
    user_text: str  # the job text the answer is derived from
    cache_prefix: str = ""  # the start of ``prompt`` the vendor's prompt cache may serve
    follow_up: bool = False  # the conversation holds an answer of the model's already
    max_tokens: int | None = None  # the output allowance asked for


class PromptCache:
    """A vendor's prompt cache as a client sees it: a prefix served before, at least the
    vendor's minimum long, is read from the cache the next time, counted in whole units of
    the vendor's size. Entries never expire here (the vendors keep them minutes to hours)."""

    def __init__(self, *, unit_tokens: int = 1) -> None:
        self.unit_tokens = unit_tokens
        self._seen: set[tuple[str, str]] = set()

    def lookup(self, model: str, prefix: str, *, minimum_tokens: int) -> tuple[int, int]:
        """Tokens of ``prefix`` (read from the cache, written to it) for one request."""
        cacheable = tokens(prefix) // self.unit_tokens * self.unit_tokens if prefix else 0
        if cacheable < minimum_tokens:
            return 0, 0  # the vendors say nothing: the prompt is simply not cached
        if (model, prefix) in self._seen:
            return cacheable, 0
        self._seen.add((model, prefix))
        return 0, cacheable


class Dialect(ABC):
    provider: str
    prefix: str  # URL prefix the API is served under
    env_name: str  # the worker's base-URL variable
    base_path: str = ""  # appended to the prefix in the printed base URL
    models: tuple[str, ...]
    cache_unit_tokens: int = 1  # the prompt cache counts hits in units of this many tokens

    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.cache = PromptCache(unit_tokens=self.cache_unit_tokens)

    @abstractmethod
    def routes(self, generate: Any) -> list[web.RouteDef]:
        """Every route of this API; ``generate`` is the shared generation handler."""

    @abstractmethod
    def auth_error(self, request: web.Request) -> web.Response | None:
        """The vendor's auth error, or None when the request is authorized."""

    def accept(self, request: web.Request, body: Any) -> Call | web.Response:
        """The HTTP request as a Call, or the vendor's error for a request it would reject
        (vendors that name the model in the path override this)."""
        return self.accept_body(body, model=None)

    @abstractmethod
    def accept_body(self, body: Any, *, model: str | None) -> Call | web.Response:
        """A request body as a Call, or the vendor's error; also how a batch's items are
        checked. ``model``: the one the path names, for vendors that name it there."""

    @abstractmethod
    def error(self, status: int, *, retry_after_s: float | None) -> web.Response:
        """An injected failure, in the vendor's error shape."""

    @abstractmethod
    def answer(self, call: Call, content: str, *, truncated: bool) -> web.StreamResponse:
        """A successful response carrying ``content`` as the model's answer."""

    def model_info(self, model: str) -> dict[str, Any]:
        """The body of a model lookup (vendors with one override this and ``model_missing``)."""
        raise NotImplementedError

    def model_missing(self, model: str) -> web.Response:
        raise NotImplementedError

    async def get_model(self, request: web.Request) -> web.Response:
        denied = self.auth_error(request)
        if denied is not None:
            return denied
        model = request.match_info["model"]
        if model not in self.models:
            return self.model_missing(model)
        return web.json_response(self.model_info(model))

    def with_retry_after(self, response: web.Response, retry_after_s: float | None) -> web.Response:
        if retry_after_s is not None:
            response.headers["retry-after"] = f"{retry_after_s:g}"
        return response

    def user_text(self, messages: Any) -> str:
        """The job's text: the first user turn (a later one is a follow-up)."""
        if not isinstance(messages, list):
            return ""
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        return str(users[0].get("content", "")) if users else ""

    @staticmethod
    def follows_up(turns: Any) -> bool:
        """Whether the conversation already holds an answer of the model's."""
        roles = (
            {t.get("role") for t in turns if isinstance(t, dict)}
            if isinstance(turns, list)
            else set()
        )
        return bool(roles & {"assistant", "model"})
