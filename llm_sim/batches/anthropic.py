"""Anthropic's Message Batches, as the vendor answers: ``POST /v1/messages/batches`` with up to
100,000 ``{custom_id, params}`` (``custom_id`` 1-64 of ``[a-zA-Z0-9_-]``, unique), a
``message_batch`` that is ``in_progress`` then ``ended`` (or ``canceling`` first), its
``request_counts``, and results JSONL at ``results_url``: ``succeeded`` / ``errored`` /
``canceled`` / ``expired`` per ``custom_id``. Each item's ``params`` are checked as the Messages
API checks a request, and a bad one comes back ``errored``."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from llm_sim.anthropic import AnthropicDialect, anthropic_error
from llm_sim.batches.engine import BatchStore, ItemResult, SimBatch, guarded, page

MAX_REQUESTS = 100_000
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


class AnthropicBatches:
    def __init__(self, dialect: AnthropicDialect, store: BatchStore) -> None:
        self.dialect = dialect
        self.store = store

    def routes(self) -> list[web.RouteDef]:
        base = f"{self.dialect.prefix}/v1/messages/batches"
        return [
            web.post(base, guarded(self.dialect, self._create)),
            web.get(base, guarded(self.dialect, self._list)),
            web.get(f"{base}/{{id}}", guarded(self.dialect, self._get)),
            web.post(f"{base}/{{id}}/cancel", guarded(self.dialect, self._cancel)),
            web.get(f"{base}/{{id}}/results", guarded(self.dialect, self._results)),
        ]

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return anthropic_error(400, "request body is not valid JSON")
        problem = _check(body)
        if problem:
            return anthropic_error(400, problem)
        requests = [(r["custom_id"], r["params"]) for r in body["requests"]]
        refused = self.store.refusal("anthropic", len(requests))
        if refused:
            return anthropic_error(413, refused)
        models = {str(p.get("model")) for _, p in requests if isinstance(p, dict)}
        batch = self.store.create(
            "anthropic", prefix="msgbatch_", model=",".join(sorted(models)), requests=requests
        )
        return web.json_response(self._batch(batch, request))

    async def _get(self, request: web.Request) -> web.Response:
        batch = self.store.get("anthropic", request.match_info["id"])
        if batch is None:
            return anthropic_error(404, f"message_batch: {request.match_info['id']} not found")
        return web.json_response(self._batch(batch, request))

    async def _list(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return anthropic_error(400, "limit: Input should be a valid integer")
        if not 1 <= limit <= 1000:
            return anthropic_error(400, "limit: must be between 1 and 1000")
        batches, more = page(
            self.store.listed("anthropic"), after=request.query.get("after_id"), limit=limit
        )
        data = [self._batch(b, request) for b in batches]
        return web.json_response(
            {
                "data": data,
                "has_more": more,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.store.get("anthropic", request.match_info["id"])
        if batch is None:
            return anthropic_error(404, f"message_batch: {request.match_info['id']} not found")
        self.store.cancel(batch)
        return web.json_response(self._batch(batch, request))

    async def _results(self, request: web.Request) -> web.Response:
        batch = self.store.get("anthropic", request.match_info["id"])
        if batch is None:
            return anthropic_error(404, f"message_batch: {request.match_info['id']} not found")
        if batch.state == "running":
            return anthropic_error(
                400, f"Batch {batch.id} has not ended: results are not available yet"
            )
        lines = [
            json.dumps({"custom_id": r.key, "result": _result(r, batch)}) for r in batch.results
        ]
        return web.Response(body="\n".join(lines) + "\n", content_type="application/binary")

    def _batch(self, batch: SimBatch, request: web.Request) -> dict[str, Any]:
        ended = batch.state != "running"
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if not ended:
            counts["processing"] = len(batch.requests)
        for result in batch.results:
            counts[_result(result, batch)["type"]] += 1
        status = "ended" if ended else ("canceling" if batch.cancel_requested_at else "in_progress")
        url = f"{request.scheme}://{request.host}{self.dialect.prefix}/v1/messages/batches/{batch.id}/results"
        return {
            "id": batch.id,
            "type": "message_batch",
            "processing_status": status,
            "request_counts": counts,
            "ended_at": _iso(batch.ended_at),
            "created_at": _iso(batch.created_at),
            "expires_at": _iso(batch.created_at + 86_400),
            "archived_at": None,
            "cancel_initiated_at": _iso(batch.cancel_requested_at),
            "results_url": url if ended else None,
        }


def _check(body: Any) -> str | None:
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        return "requests: Field required"
    requests = body["requests"]
    if not 1 <= len(requests) <= MAX_REQUESTS:
        return f"requests: must have between 1 and {MAX_REQUESTS} items"
    seen: set[str] = set()
    for index, item in enumerate(requests):
        if not isinstance(item, dict) or "params" not in item:
            return f"requests.{index}.params: Field required"
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            return (
                f"requests.{index}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            return f"requests.{index}.custom_id: custom_id '{custom_id}' is not unique"
        if not isinstance(item["params"], dict) or item["params"].get("stream"):
            return f"requests.{index}.params: must be a non-streaming Messages request"
        seen.add(custom_id)
    return None


def _result(result: ItemResult, batch: SimBatch) -> dict[str, Any]:
    if result.status is None:
        return {"type": "expired" if batch.state == "expired" else "canceled"}
    if result.status == 200:
        return {"type": "succeeded", "message": result.body}
    return {"type": "errored", "error": result.body}


def _iso(at: float | None) -> str | None:
    return (
        None if at is None else datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")
    )
