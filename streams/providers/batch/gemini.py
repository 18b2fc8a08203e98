"""Gemini's Batch Mode with inline requests: ``models/{model}:batchGenerateContent``, an
operation ``batches/…`` polled until ``done`` through its ``BATCH_STATE_*`` states, and the
inlined responses, each keyed by its request's ``metadata.key``."""

from __future__ import annotations

from typing import Any

from streams.providers.base import EnrichRequest
from streams.providers.batch.base import BatchAPI, BatchStatus, ItemOutcome

__all__ = ["GeminiBatches"]

STATES = {
    "BATCH_STATE_SUCCEEDED": "completed",
    "BATCH_STATE_FAILED": "failed",
    "BATCH_STATE_EXPIRED": "expired",
    "BATCH_STATE_CANCELLED": "cancelled",
}
# The HTTP status a live call answers with, per google.rpc.Code of an inlined error.
RPC_STATUS = {3: 400, 4: 504, 5: 404, 7: 403, 8: 429, 13: 500, 14: 503, 16: 401}


class GeminiBatches(BatchAPI):
    async def submit(
        self, *, label: str, model: str, requests: list[tuple[str, EnrichRequest]]
    ) -> str:
        inlined = [{"request": self.body(r, model), "metadata": {"key": k}} for k, r in requests]
        body = {
            "batch": {
                "displayName": label,
                "model": f"models/{model}",
                "inputConfig": {"requests": {"requests": inlined}},
            }
        }
        created = await self.json("POST", f"/v1beta/models/{model}:batchGenerateContent", body=body)
        return str(created["name"])

    async def poll(self, batch_id: str, *, model: str) -> BatchStatus:
        operation = await self.json("GET", f"/v1beta/{batch_id}")
        if not operation.get("done"):
            return BatchStatus(state="running")
        state = STATES.get(str(operation.get("metadata", {}).get("state")), "failed")
        if state != "completed":
            error = operation.get("error") or {}
            return BatchStatus(state=state, detail=str(error.get("message") or state))  # type: ignore[arg-type]
        output = operation.get("response") or operation["metadata"].get("output") or {}
        items: dict[str, ItemOutcome] = {}
        for entry in (output.get("inlinedResponses") or {}).get("inlinedResponses") or []:
            items[str(entry["metadata"]["key"])] = self._item(entry, model=model)
        return BatchStatus(state="completed", items=items)

    def _item(self, entry: dict[str, Any], *, model: str) -> ItemOutcome:
        if "response" in entry:
            return self.item(200, entry["response"], model=model)
        status: dict[str, Any] = entry.get("error") or {}
        http = RPC_STATUS.get(int(status.get("code") or 2), 500)
        return self.item(
            http, {"error": {"code": http, "message": status.get("message")}}, model=model
        )

    async def find(self, *, label: str, created_after: float, count: int) -> str | None:
        listed = await self.json("GET", "/v1beta/batches")
        for operation in listed.get("operations") or []:
            if (operation.get("metadata") or {}).get("displayName") == label:
                return str(operation["name"])
        return None
