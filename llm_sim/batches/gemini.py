"""Gemini's Batch Mode with inline requests, as the REST API answers (v1beta):
``POST /v1beta/models/{model}:batchGenerateContent`` with ``{"batch": {displayName,
inputConfig: {requests: {requests: [{request, metadata: {key}}]}}}}`` (at most 20 MB), an
Operation named ``batches/…`` whose ``metadata.state`` goes ``BATCH_STATE_PENDING`` →
``BATCH_STATE_RUNNING`` → ``BATCH_STATE_SUCCEEDED`` (or ``_FAILED``, ``_CANCELLED``,
``_EXPIRED``), and, once ``done``, the inlined responses in input order, each a
``GenerateContentResponse`` or an ``error`` Status. (The Python SDK renames the states
``JOB_STATE_*``; the wire says ``BATCH_STATE_*``.) Both camelCase and snake_case are read, as
protobuf JSON does."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from llm_sim.batches.engine import BatchStore, SimBatch, guarded
from llm_sim.gemini import GeminiDialect, google_error

MAX_INLINE_BYTES = 20 * 1024 * 1024
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.GenerateContentBatchOutput"
STATES = {
    "completed": "BATCH_STATE_SUCCEEDED",
    "failed": "BATCH_STATE_FAILED",
    "expired": "BATCH_STATE_EXPIRED",
    "cancelled": "BATCH_STATE_CANCELLED",
}


class GeminiBatches:
    def __init__(self, dialect: GeminiDialect, store: BatchStore) -> None:
        self.dialect = dialect
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        prefix = f"{self.dialect.prefix}/v1beta"
        return [
            web.post(
                f"{prefix}/models/{{model:[^/:]+}}:batchGenerateContent",
                guarded(self.dialect, self._create),
            ),
            web.get(f"{prefix}/batches", guarded(self.dialect, self._list)),
            web.get(f"{prefix}/batches/{{id:[^/:]+}}", guarded(self.dialect, self._get)),
            web.post(f"{prefix}/batches/{{id:[^/:]+}}:cancel", guarded(self.dialect, self._cancel)),
        ]

    async def _create(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if len(raw) > MAX_INLINE_BYTES:
            return google_error(400, "Request payload size exceeds the limit: 20971520 bytes.")
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return google_error(400, "Invalid JSON payload received.")
        model = request.match_info["model"]
        if model not in self.dialect.models:
            return self.dialect.model_missing(model)
        batch_body = body.get("batch") if isinstance(body, dict) else None
        if not isinstance(batch_body, dict):
            return google_error(400, "* BatchGenerateContentRequest.batch: batch is required")
        name = _field(batch_body, "displayName", "display_name")
        if not isinstance(name, str) or not name:
            return google_error(
                400, "* GenerateContentBatch.display_name: display_name is required"
            )
        inlined = _field(_field(batch_body, "inputConfig", "input_config") or {}, "requests") or {}
        items = _field(inlined, "requests")
        if not isinstance(items, list) or not items:
            return google_error(400, "* GenerateContentBatch.input_config: requests are required")
        requests: list[tuple[str, Any]] = []
        for index, item in enumerate(items):
            if not isinstance(item, dict) or not isinstance(item.get("request"), dict):
                return google_error(400, f"* InlinedRequest[{index}].request is required")
            key = str((item.get("metadata") or {}).get("key", index))
            requests.append((key, item["request"]))
        refused = self.store.refusal("gemini", len(requests))
        if refused:
            return google_error(400, refused)
        batch = self.store.create("gemini", prefix="", model=model, requests=requests, label=name)
        return web.json_response(self._operation(batch))

    async def _get(self, request: web.Request) -> web.Response:
        batch = self.store.get("gemini", request.match_info["id"])
        if batch is None:
            return google_error(404, f"Batch batches/{request.match_info['id']} not found.")
        return web.json_response(self._operation(batch))

    async def _list(self, request: web.Request) -> web.Response:
        operations = [self._operation(b) for b in self.store.listed("gemini")]
        return web.json_response({"operations": operations})

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.store.get("gemini", request.match_info["id"])
        if batch is None:
            return google_error(404, f"Batch batches/{request.match_info['id']} not found.")
        self.store.cancel(batch)
        return web.json_response({})

    def _operation(self, batch: SimBatch) -> dict[str, Any]:
        ended = batch.state != "running"
        succeeded = sum(r.status == 200 for r in batch.results)
        metadata: dict[str, Any] = {
            "@type": BATCH_TYPE,
            "model": f"models/{batch.model}",
            "displayName": batch.label,
            "state": STATES[batch.state] if ended else "BATCH_STATE_RUNNING",
            "createTime": _iso(batch.created_at),
            "updateTime": _iso(batch.ended_at or batch.created_at),
            "batchStats": {
                "requestCount": str(len(batch.requests)),
                "successfulRequestCount": str(succeeded),
                "failedRequestCount": str(len(batch.results) - succeeded)
                if batch.state == "completed"
                else "0",
                "pendingRequestCount": "0" if ended else str(len(batch.requests)),
            },
        }
        operation: dict[str, Any] = {
            "name": f"batches/{batch.id}",
            "metadata": metadata,
            "done": ended,
        }
        if not ended:
            return operation
        metadata["endTime"] = _iso(batch.ended_at)
        if batch.state == "completed":
            responses = [
                {"metadata": {"key": r.key}, "response": r.body}
                if r.status == 200
                else {"metadata": {"key": r.key}, "error": _status(r.body, r.status)}
                for r in batch.results
            ]
            output = {"inlinedResponses": {"inlinedResponses": responses}}
            metadata["output"] = output
            operation["response"] = {"@type": OUTPUT_TYPE, **output}
        else:
            code, message = {
                "failed": (13, batch.failure or "Batch failed."),
                "expired": (4, "Batch expired: not completed within 48 hours."),
                "cancelled": (1, "Batch was cancelled."),
            }[batch.state]
            operation["error"] = {"code": code, "message": message, "details": []}
        return operation


def _field(body: dict[str, Any], camel: str, snake: str | None = None) -> Any:
    return body.get(camel, body.get(snake or camel))


# google.rpc.Code numbers of the statuses a live error names
RPC_CODES = {
    "INVALID_ARGUMENT": 3,
    "DEADLINE_EXCEEDED": 4,
    "NOT_FOUND": 5,
    "PERMISSION_DENIED": 7,
    "RESOURCE_EXHAUSTED": 8,
    "INTERNAL": 13,
    "UNAVAILABLE": 14,
    "UNAUTHENTICATED": 16,
}


def _status(body: Any, http_status: int | None) -> dict[str, Any]:
    """A live error body as the google.rpc.Status of an inlined response."""
    error = body.get("error", {}) if isinstance(body, dict) else {}
    code = RPC_CODES.get(str(error.get("status")), 2)  # 2: UNKNOWN
    return {"code": code, "message": error.get("message", ""), "details": []}


def _iso(at: float | None) -> str | None:
    return (
        None if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    )
