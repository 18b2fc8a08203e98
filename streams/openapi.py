"""The OpenAPI 3.1 document of the web view, generated from the Pydantic models."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from streams import __version__
from streams.models import ControlCommand, EnrichedJob, Enrichment, RawJob

REF = "#/components/schemas/{model}"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["status", "message"],
            "properties": {
                "status": {"type": "integer"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"], "description": "the input that was wrong"},
            },
        }
    },
}
ANY_OBJECT = {"type": "object", "additionalProperties": True}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _errors(*statuses: int) -> dict[str, Any]:
    reasons = {
        400: "not JSON",
        401: "missing or wrong bearer token",
        403: "admin endpoints disabled (no LLM_SERVICE_ADMIN_TOKEN)",
        404: "unknown provider",
        422: "invalid input; `field` names it",
        502: "every provider failed",
    }
    return {str(s): _json({"$ref": "#/components/schemas/Error"}, reasons[s]) for s in statuses}


@cache
def document() -> dict[str, Any]:
    from streams.web import BatchRequest, ProcessRequest, UsageRequest

    models: list[type[BaseModel]] = [
        RawJob,
        Enrichment,
        EnrichedJob,
        ControlCommand,
        ProcessRequest,
        BatchRequest,
        UsageRequest,
    ]
    _, definitions = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas = definitions.get("$defs", {}) | {"Error": ERROR}
    provider = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {
            "type": "string",
            "enum": ["openai", "anthropic", "gemini", "deepseek", "ollama"],
        },
    }
    admin: list[dict[str, list[str]]] = [{"bearer": []}]

    def get(summary: str, **extra: Any) -> dict[str, Any]:
        return {"get": {"summary": summary, "responses": {"200": _json(ANY_OBJECT)}, **extra}}

    def post(
        summary: str, body: dict[str, Any] | None, *, secured: bool, **extra: Any
    ) -> dict[str, Any]:
        operation: dict[str, Any] = {"summary": summary, **extra}
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body}},
            }
        operation["responses"] = {"200": _json(ANY_OBJECT), **_errors(400, 422)}
        if secured:
            operation["security"] = admin
            operation["responses"] = {
                "202": _json(ANY_OBJECT, "accepted"),
                **_errors(400, 401, 403, 422),
            }
        return {"post": operation}

    paths: dict[str, Any] = {
        "/health": get("Worker, broker, consumer lag, memory and provider health"),
        "/status": get("Routing state of this worker"),
        "/statistics": get(
            "Totals per provider and the last minutes",
            parameters=[
                {"name": "minutes", "in": "query", "schema": {"type": "integer", "minimum": 1}}
            ],
        ),
        "/statistics/reset": post(
            "Reset the totals (a command to every worker)", None, secured=True
        ),
        "/reports/usage": {
            **get(
                "Daily usage per provider over a date range",
                parameters=[
                    {
                        "name": "start",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "date"},
                    },
                    {
                        "name": "end",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "string", "format": "date"},
                    },
                ],
            ),
            "post": {
                "summary": "The same report, asked with a JSON body (answers 303 to the GET)",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref(UsageRequest)}},
                },
                "responses": {"303": {"description": "see the GET"}, **_errors(400, 422)},
            },
        },
        "/config": get("Effective settings, secrets redacted"),
        "/config/update": post(
            "Change runtime settings on every worker (validated first)",
            {"type": "object", "minProperties": 1, "additionalProperties": True},
            secured=True,
        ),
        "/providers": get("Every provider: state, health, totals"),
        "/providers/{name}": get("One provider", parameters=[provider]),
        "/providers/{name}/health": get("Active (free) and passive health", parameters=[provider]),
        "/providers/{name}/enable": post(
            "Route jobs to it again", None, secured=True, parameters=[provider]
        ),
        "/providers/{name}/disable": post(
            "Stop routing jobs to it", None, secured=True, parameters=[provider]
        ),
        "/providers/{name}/test": post(
            "A live, tiny call", None, secured=True, parameters=[provider]
        ),
        "/process": post(
            "Enrich one job or prompt now, through the router", _ref(ProcessRequest), secured=False
        ),
        "/process/batch": post("Enrich several at once", _ref(BatchRequest), secured=False),
        "/metrics": {
            "get": {
                "summary": "Prometheus text format",
                "responses": {
                    "200": {
                        "description": "OK",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }
    for path, item in paths.items():
        for operation in item.values():
            if "{name}" in path:
                operation.setdefault("responses", {}).update(_errors(404))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "llm-provider-streams web view",
            "version": __version__,
            "description": "Health, statistics, reports, provider control, synchronous processing.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
