"""The OpenAPI 3.1 document of the web view, generated from the route table and its models."""

from __future__ import annotations

import html
from functools import cache
from typing import Any, TypeGuard

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from streams import __version__
from streams.vocab import PROVIDER_NAMES
from streams.web import bodies as b
from streams.web.routes import ROUTES, Route

__all__ = ["docs_page", "document"]

REF = "#/components/schemas/{model}"
# Why a request can be refused, for the statuses a route may answer besides its own.
REASONS = {
    400: "the body is not JSON",
    401: "missing or wrong bearer token",
    403: "admin endpoints disabled (no LLM_SERVICE_ADMIN_TOKEN)",
    404: "unknown provider",
    422: "invalid input; `field` names it",
    502: "every provider failed",
    503: "unhealthy: the broker is out of reach",
}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _content(response: type[BaseModel] | str) -> dict[str, Any]:
    if isinstance(response, str):
        return {response: {"schema": {"type": "string"}}}
    return {"application/json": {"schema": _ref(response)}}


def _refusals(route: Route) -> list[int]:
    statuses = []
    if route.body is not None:
        statuses += [400, 422]
    if route.query is not None:
        statuses.append(422)
    if route.admin:
        statuses += [401, 403]
    if route.names_provider or route.names_job:
        statuses.append(404)
    return sorted(set(statuses))


def _responses(route: Route) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(route.status): {"description": "OK", "content": _content(route.response)}
    }
    for status in _refusals(route):
        responses[str(status)] = {
            "description": REASONS[status],
            "content": _content(b.ErrorBody),
        }
    for status, model in route.also.items():
        schemas = [_ref(model)]
        if str(status) in responses:  # either the route's model or an error body
            schemas.append(_ref(b.ErrorBody))
        responses[str(status)] = {
            "description": REASONS[status],
            "content": {"application/json": {"schema": {"anyOf": schemas}}},
        }
    return responses


def _parameters(route: Route) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = []
    if route.names_provider:
        parameters.append(
            {
                "name": "name",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "enum": list(PROVIDER_NAMES)},
            }
        )
    if route.names_job:
        parameters.append(
            {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    if route.query is not None:
        schema = route.query.model_json_schema()
        required = set(schema.get("required", []))
        for name, field in schema["properties"].items():
            field.pop("title", None)
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": field}
            )
    return parameters


def _operation(route: Route) -> dict[str, Any]:
    operation: dict[str, Any] = {"summary": route.summary, "operationId": route.handler}
    if parameters := _parameters(route):
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    if route.admin:
        operation["security"] = [{"bearer": []}]
    operation["responses"] = _responses(route)
    return operation


@cache
def document() -> dict[str, Any]:
    routes = [route for route in ROUTES if route.in_docs]
    models: set[type[BaseModel]] = {b.ErrorBody}
    for route in routes:
        models |= {m for m in (route.body, route.response, *route.also.values()) if _is_model(m)}
    _, definitions = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
        ref_template=REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-provider-streams web view",
            "version": __version__,
            "description": "Health, statistics, reports, provider control, synchronous processing.",
        },
        "paths": paths,
        "components": {
            "schemas": definitions.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _is_model(value: object) -> TypeGuard[type[BaseModel]]:
    return isinstance(value, type) and issubclass(value, BaseModel)


def docs_page(document: dict[str, Any]) -> str:
    """The API at a glance, rendered here (no external scripts); the full document is at
    /openapi.json."""
    rows = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            secured = " (admin token)" if operation.get("security") else ""
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code></td>"
                f"<td>{html.escape(operation.get('summary', ''))}{secured}</td></tr>"
            )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>API</title>"
        "<style>body{font:14px system-ui;margin:2em}td{padding:4px 12px}</style></head><body>"
        f"<h1>{html.escape(document['info']['title'])}</h1>"
        "<p>The full OpenAPI 3.1 document: <a href='/openapi.json'>/openapi.json</a>.</p>"
        f"<table>{''.join(rows)}</table></body></html>"
    )
