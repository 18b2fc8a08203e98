"""OpenAI's Batch API: the requests as a JSONL file (``POST /files``, purpose ``batch``), a batch
on ``/v1/chat/completions`` in the ``24h`` window, polled through ``validating``,
``in_progress``, ``finalizing`` to ``completed`` / ``failed`` / ``expired`` / ``cancelled``, and
the output and error files read back, joined on ``custom_id``."""

from __future__ import annotations

import json
from typing import Any

from streams.providers.base import EnrichRequest
from streams.providers.batch.base import BatchAPI, BatchStatus, ItemOutcome

__all__ = ["OpenAIBatches"]

ENDPOINT = "/v1/chat/completions"
LABEL_KEY = "llm_streams_batch"  # the metadata pair a batch is found by
RUNNING = ("validating", "in_progress", "finalizing", "cancelling")


class OpenAIBatches(BatchAPI):
    async def submit(
        self, *, label: str, model: str, requests: list[tuple[str, EnrichRequest]]
    ) -> str:
        lines = [
            {"custom_id": key, "method": "POST", "url": ENDPOINT, "body": self.body(r, model)}
            for key, r in requests
        ]
        content = "".join(json.dumps(line) + "\n" for line in lines).encode()
        uploaded = await self.json(
            "POST",
            "/files",
            files={"file": (f"{label}.jsonl", content, "application/jsonl")},
            data={"purpose": "batch"},
        )
        created = await self.json(
            "POST",
            "/batches",
            body={
                "input_file_id": uploaded["id"],
                "endpoint": ENDPOINT,
                "completion_window": "24h",
                "metadata": {LABEL_KEY: label},
            },
        )
        return str(created["id"])

    async def poll(self, batch_id: str, *, model: str) -> BatchStatus:
        batch = await self.json("GET", f"/batches/{batch_id}")
        status = batch["status"]
        if status in RUNNING:
            return BatchStatus(state="running")
        if status == "failed":
            errors = (batch.get("errors") or {}).get("data") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
            return BatchStatus(state="failed", detail=detail or "failed validation")
        items: dict[str, ItemOutcome] = {}
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
            if file_id:
                items |= await self._read_file(file_id, model=model)
        return BatchStatus(state=status, detail=status, items=items)

    async def _read_file(self, file_id: str, *, model: str) -> dict[str, ItemOutcome]:
        response = await self.call("GET", f"/files/{file_id}/content")
        items: dict[str, ItemOutcome] = {}
        for line in response.text.splitlines():
            if not line.strip():
                continue
            result: dict[str, Any] = json.loads(line)
            answer = result.get("response")
            if answer is not None:
                items[result["custom_id"]] = self.item(
                    answer["status_code"], answer.get("body"), model=model
                )
            else:
                error = result.get("error") or {}
                items[result["custom_id"]] = self.not_run(
                    f"{error.get('code')}: {error.get('message')}"
                )
        return items

    async def find(self, *, label: str, created_after: float, count: int) -> str | None:
        listed = await self.json("GET", "/batches", params={"limit": 100})
        for batch in listed.get("data") or []:
            if (batch.get("metadata") or {}).get(LABEL_KEY) == label:
                return str(batch["id"])
        return None
