"""Anthropic's Message Batches: ``POST /v1/messages/batches`` with ``{custom_id, params}`` per
request, polled until ``processing_status`` is ``ended``, then the results JSONL from
``results_url``: ``succeeded`` / ``errored`` / ``canceled`` / ``expired`` per ``custom_id``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from streams.errors import ProviderUnavailable
from streams.providers.base import EnrichRequest
from streams.providers.batch.base import BatchAPI, BatchStatus, ItemOutcome

__all__ = ["AnthropicBatches"]

# The HTTP status a live call answers with each error type (the errored results carry only
# the type).
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


class AnthropicBatches(BatchAPI):
    async def submit(
        self, *, label: str, model: str, requests: list[tuple[str, EnrichRequest]]
    ) -> str:
        body = {"requests": [{"custom_id": k, "params": self.body(r, model)} for k, r in requests]}
        created = await self.json("POST", "/v1/messages/batches", body=body)
        return str(created["id"])

    async def poll(self, batch_id: str, *, model: str) -> BatchStatus:
        batch = await self.json("GET", f"/v1/messages/batches/{batch_id}")
        if batch["processing_status"] != "ended":
            return BatchStatus(state="running")
        response = await self.call("GET", batch["results_url"])
        items: dict[str, ItemOutcome] = {}
        for line in response.text.splitlines():
            if line.strip():
                entry: dict[str, Any] = json.loads(line)
                items[entry["custom_id"]] = self._item(entry["result"], model=model)
        counts = batch.get("request_counts") or {}
        if items and counts.get("canceled", 0) == len(items):
            return BatchStatus(state="cancelled", detail="canceled", items=items)
        if items and counts.get("expired", 0) == len(items):
            return BatchStatus(state="expired", detail="expired", items=items)
        return BatchStatus(state="completed", items=items)

    def _item(self, result: dict[str, Any], *, model: str) -> ItemOutcome:
        kind = result.get("type")
        if kind == "succeeded":
            return self.item(200, result["message"], model=model)
        if kind == "errored":
            error = result.get("error") or {}
            status = ERROR_STATUS.get(str((error.get("error") or {}).get("type")), 500)
            return self.item(status, error, model=model)
        return self.not_run(f"the request was {kind} before it ran")

    async def find(self, *, label: str, created_after: float, count: int) -> str | None:
        # Message batches carry no label, and their custom ids (which start with ours) show
        # only in the results: a batch created since then with as many requests is ours if its
        # results say so, and cannot be told until it has ended.
        listed = await self.json("GET", "/v1/messages/batches", params={"limit": 100})
        for batch in listed.get("data") or []:
            created = datetime.fromisoformat(batch["created_at"].replace("Z", "+00:00"))
            total = sum((batch.get("request_counts") or {}).values())
            if created.timestamp() < created_after or total != count:
                continue
            if batch["processing_status"] != "ended":
                raise ProviderUnavailable(
                    f"cannot tell yet whether {batch['id']} is {label}", provider=self.name
                )
            results = await self.call("GET", batch["results_url"])
            first = json.loads(results.text.splitlines()[0]) if results.text.strip() else {}
            if str(first.get("custom_id", "")).startswith(f"{label}_"):
                return str(batch["id"])
        return None
