"""Registers the route table's pages on Faust's web server: one View per path, each method
parsing its request the way its route says, checking the admin token where it must, calling
its handler and rendering the answer."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from itertools import groupby
from typing import Any

from faust.web import View
from pydantic import BaseModel, SecretStr, ValidationError

from streams.errors import describe
from streams.vocab import PROVIDER_NAMES
from streams.web import bodies as b
from streams.web.handlers import Call, Handlers, Page, Problem, Reply
from streams.web.routes import ROUTES, Route

__all__ = ["install"]

Endpoint = Callable[..., Awaitable[Any]]


def install(app: Any, handlers: Handlers, *, tables: Any) -> None:
    """Register every route on the Faust app. ``tables`` is the table whose holder answers
    the routes that read the stats."""
    by_path = sorted(ROUTES, key=lambda route: route.path)
    for path, routes in groupby(by_path, key=lambda route: route.path):
        methods: dict[str, Endpoint] = {}
        for route in routes:
            endpoint = _endpoint(route, handlers)
            if route.reads_tables:
                endpoint = app.table_route(table=tables, exact_key="stats")(endpoint)
            methods[route.method] = endpoint
        app.page(path)(type(f"View{path.replace('/', '_')}", (View,), methods))


def _endpoint(route: Route, handlers: Handlers) -> Endpoint:
    handler = getattr(handlers, route.handler)
    token = handlers.config.admin_token

    async def endpoint(view: View, request: Any, **match_info: str) -> Any:
        try:
            name = match_info.get("name", "")
            if route.names_provider and name not in PROVIDER_NAMES:
                raise Problem(404, f"unknown provider {name!r}", "name")
            if route.admin:
                _check_admin(token, request)
            call = Call(
                request=request,
                body=await _body(route.body, request) if route.body else None,
                query=_query(route.query, request) if route.query else None,
                name=name,
                job_id=match_info.get("job_id", ""),
            )
            answer = await handler(call)
        except Problem as problem:
            error = b.ErrorDetail(
                status=problem.status, message=problem.message, field=problem.field
            )
            return view.json(
                b.ErrorBody(error=error).model_dump(mode="json"), status=problem.status
            )
        return _render(view, route, answer)

    return endpoint


def _check_admin(token: SecretStr | None, request: Any) -> None:
    """The one admin check: a bearer token equal to LLM_SERVICE_ADMIN_TOKEN."""
    if token is None:
        raise Problem(
            403, "state-changing endpoints are disabled; set LLM_SERVICE_ADMIN_TOKEN to enable them"
        )
    given = request.headers.get("Authorization", "")
    expected = f"Bearer {token.get_secret_value()}"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise Problem(401, "missing or wrong bearer token")


async def _body(model: type[BaseModel], request: Any) -> BaseModel:
    raw = await request.read()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise Problem(400, "the body is not valid JSON") from None
        raise _invalid(exc) from None


def _query(model: type[BaseModel], request: Any) -> BaseModel:
    try:
        return model.model_validate(dict(request.query))
    except ValidationError as exc:
        raise _invalid(exc) from None


def _invalid(exc: ValidationError) -> Problem:
    where = ".".join(str(part) for part in exc.errors()[0]["loc"]) or None
    return Problem(422, describe(exc, limit=1), where)


def _render(view: View, route: Route, answer: BaseModel | Reply | Page) -> Any:
    if isinstance(answer, Page):
        return view.bytes(answer.content, content_type=answer.content_type)
    reply = answer if isinstance(answer, Reply) else Reply(body=answer, status=route.status)
    return view.json(reply.body.model_dump(mode="json"), status=reply.status, headers=reply.headers)
