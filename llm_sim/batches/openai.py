"""OpenAI's Files and Batch APIs for ``/v1/chat/completions``, as the vendor answers: a JSONL
file uploaded with purpose ``batch``, a batch created from it (window ``24h``), its status
``validating`` → ``in_progress`` → ``completed`` (or ``failed``, ``expired``, ``cancelling`` →
``cancelled``), and the output and error files, one line per request, joined on ``custom_id``.

Checked as the vendor does: the purpose, the endpoint, the window, at most 16 metadata pairs;
each line's JSON, a unique ``custom_id``, method ``POST``, the batch's URL and one model per
file (a batch with a bad file is ``failed`` with ``errors.data``)."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from llm_sim.batches.engine import BatchStore, SimBatch, guarded, page
from llm_sim.openai import OpenAIDialect, openai_error

ENDPOINT = "/v1/chat/completions"
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
PURPOSES = ("batch", "fine-tune", "assistants", "vision", "user_data", "evals")


class OpenAIBatches:
    def __init__(self, dialect: OpenAIDialect, store: BatchStore) -> None:
        self.dialect = dialect
        self.store = store
        self.files: dict[str, tuple[str, bytes, str]] = {}  # id -> (filename, bytes, purpose)

    def routes(self) -> list[web.RouteDef]:
        prefix = self.dialect.prefix
        return [
            web.post(f"{prefix}/files", guarded(self.dialect, self._upload)),
            web.get(f"{prefix}/files/{{id}}/content", guarded(self.dialect, self._content)),
            web.post(f"{prefix}/batches", guarded(self.dialect, self._create)),
            web.get(f"{prefix}/batches", guarded(self.dialect, self._list)),
            web.get(f"{prefix}/batches/{{id}}", guarded(self.dialect, self._get)),
            web.post(f"{prefix}/batches/{{id}}/cancel", guarded(self.dialect, self._cancel)),
        ]

    async def _upload(self, request: web.Request) -> web.Response:
        if not request.content_type.startswith("multipart/"):
            return self.dialect.bad_request("The request must be multipart/form-data.")
        form = await request.post()
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, web.FileField):
            return self.dialect.bad_request("'file' is a required property")
        if not isinstance(purpose, str) or purpose not in PURPOSES:
            return self.dialect.bad_request(f"'{purpose!s}' is not a valid purpose")
        content = upload.file.read()
        if len(content) > MAX_FILE_BYTES:
            return self.dialect.bad_request("File is too large.")
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        self.files[file_id] = (upload.filename, content, purpose)
        return web.json_response(self._file(file_id))

    def _file(self, file_id: str) -> dict[str, Any]:
        filename, content, purpose = self.files[file_id]
        return {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    async def _content(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["id"])
        if found is None:
            return _missing("file", request.match_info["id"])
        return web.Response(body=found[1], content_type="application/octet-stream")

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return self.dialect.bad_request("We could not parse the JSON body of your request.")
        if not isinstance(body, dict):
            return self.dialect.bad_request("The request body must be a JSON object.")
        problem = _check_create(body)
        if problem:
            return self.dialect.bad_request(problem)
        found = self.files.get(body["input_file_id"])
        if found is None or found[2] != "batch":
            return self.dialect.bad_request(
                f"Invalid 'input_file_id': '{body['input_file_id']}'. Expected a file with "
                "purpose 'batch'."
            )
        requests, model, failure = _read_lines(found[1])
        refused = self.store.refusal("openai", len(requests))
        if refused:
            return self.dialect.bad_request(refused)
        label = json.dumps(body.get("metadata")) if body.get("metadata") else None
        batch = self.store.create(
            "openai",
            prefix="batch_",
            model=model,
            requests=requests,
            label=label,
            failure=failure,
            vendor={"input_file_id": body["input_file_id"], "metadata": body.get("metadata")},
        )
        return web.json_response(self._batch(batch, fresh=True))

    async def _get(self, request: web.Request) -> web.Response:
        batch = self.store.get("openai", request.match_info["id"])
        if batch is None:
            return _missing("batch", request.match_info["id"])
        return web.json_response(self._batch(batch))

    async def _list(self, request: web.Request) -> web.Response:
        try:
            limit = int(request.query.get("limit", "20"))
        except ValueError:
            return self.dialect.bad_request("Invalid 'limit': expected an integer.")
        if not 1 <= limit <= 100:
            return self.dialect.bad_request("Invalid 'limit': must be between 1 and 100.")
        batches, more = page(
            self.store.listed("openai"), after=request.query.get("after"), limit=limit
        )
        data = [self._batch(b) for b in batches]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None,
                "has_more": more,
            }
        )

    async def _cancel(self, request: web.Request) -> web.Response:
        batch = self.store.get("openai", request.match_info["id"])
        if batch is None:
            return _missing("batch", request.match_info["id"])
        if batch.state != "running":
            return openai_error(
                409,
                f"Cannot cancel a batch with status '{self._status(batch)}'.",
                "invalid_request_error",
                None,
            )
        self.store.cancel(batch)
        return web.json_response(self._batch(batch) | {"status": "cancelling"})

    def _status(self, batch: SimBatch, *, fresh: bool = False) -> str:
        if batch.state == "running":
            return "validating" if fresh else "in_progress"
        return batch.state

    def _batch(self, batch: SimBatch, *, fresh: bool = False) -> dict[str, Any]:
        created = batch.vendor
        ended = batch.state in ("completed", "expired", "cancelled")  # failed: no files
        done = [r for r in batch.results if r.status == 200]
        errors = [r for r in batch.results if r.status != 200]
        output_file = self._result_file(batch, done, "output") if ended and done else None
        error_file = self._result_file(batch, errors, "error") if ended and errors else None
        at = int(batch.ended_at) if batch.ended_at else None
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "model": batch.model,
            "errors": {"object": "list", "data": [_error(batch.failure)]}
            if batch.failure
            else None,
            "input_file_id": created["input_file_id"],
            "completion_window": "24h",
            "status": self._status(batch, fresh=fresh),
            "output_file_id": output_file,
            "error_file_id": error_file,
            "created_at": int(batch.created_at),
            "in_progress_at": None if fresh or batch.failure else int(batch.created_at),
            "expires_at": int(batch.created_at) + 86_400,
            "finalizing_at": at if batch.state == "completed" else None,
            "completed_at": at if batch.state == "completed" else None,
            "failed_at": at if batch.state == "failed" else None,
            "expired_at": at if batch.state == "expired" else None,
            "cancelling_at": int(batch.cancel_requested_at) if batch.cancel_requested_at else None,
            "cancelled_at": at if batch.state == "cancelled" else None,
            "request_counts": {
                "total": len(batch.requests),
                "completed": len(done),
                "failed": len(errors) if batch.state == "completed" else 0,
            },
            "metadata": created["metadata"],
        }

    def _result_file(self, batch: SimBatch, results: list[Any], kind: str) -> str:
        file_id = f"file-{batch.id}-{kind}"
        if file_id not in self.files:
            lines = []
            for result in results:
                line: dict[str, Any] = {
                    "id": f"batch_req_{uuid.uuid4().hex[:16]}",
                    "custom_id": result.key,
                }
                if result.status is None:  # never ran
                    line |= {"response": None, "error": _never_ran(batch.state)}
                else:
                    response = {
                        "status_code": result.status,
                        "request_id": f"req_{uuid.uuid4().hex[:12]}",
                        "body": result.body,
                    }
                    line |= {"response": response, "error": None}
                lines.append(json.dumps(line))
            content = ("\n".join(lines) + "\n").encode()
            self.files[file_id] = (f"{batch.id}_{kind}.jsonl", content, "batch_output")
        return file_id


def _check_create(body: dict[str, Any]) -> str | None:
    for name in ("input_file_id", "endpoint", "completion_window"):
        if name not in body:
            return f"Missing required parameter: '{name}'."
    if body["endpoint"] != ENDPOINT:
        return f"Invalid value for 'endpoint': this simulator serves only '{ENDPOINT}'."
    if body["completion_window"] != "24h":
        return "Invalid value for 'completion_window': supported values are: '24h'."
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or len(metadata) > 16:
            return "Invalid 'metadata': at most 16 key-value pairs."
        if any(
            len(str(k)) > 64 or not isinstance(v, str) or len(v) > 512 for k, v in metadata.items()
        ):
            return "Invalid 'metadata': keys up to 64 characters, string values up to 512."
    return None


def _read_lines(content: bytes) -> tuple[list[tuple[str, Any]], str, str | None]:
    """The file's requests, its one model, and why it fails validation (None if it does not)."""
    requests: list[tuple[str, Any]] = []
    models: set[str] = set()
    seen: set[str] = set()
    lines = [line for line in content.decode("utf-8", "replace").splitlines() if line.strip()]
    if not lines:
        return [], "", "empty_file: The input file is empty."
    if len(lines) > MAX_REQUESTS:
        return [], "", f"too_many_tasks: at most {MAX_REQUESTS} requests per batch."
    for number, line in enumerate(lines, start=1):
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            return [], "", f"invalid_json_line: line {number} is not parseable as valid JSON."
        if not isinstance(item, dict) or not isinstance(item.get("custom_id"), str):
            return [], "", f"missing_required_parameter: line {number} has no 'custom_id'."
        if item["custom_id"] in seen:
            return [], "", f"duplicate_custom_id: line {number} repeats '{item['custom_id']}'."
        if item.get("method") != "POST" or item.get("url") != ENDPOINT:
            return [], "", f"url_mismatch: line {number} must POST to '{ENDPOINT}'."
        body = item.get("body")
        if not isinstance(body, dict):
            return [], "", f"invalid_request: line {number} has no 'body' object."
        seen.add(item["custom_id"])
        models.add(str(body.get("model")))
        requests.append((item["custom_id"], body))
    if len(models) > 1:
        return [], "", "model_mismatch: every request of a batch must use the same model."
    return requests, models.pop(), None


def _error(failure: str) -> dict[str, Any]:
    code, _, message = failure.partition(": ")
    return {
        "code": code if message else "failed",
        "message": message or failure,
        "param": None,
        "line": None,
    }


def _never_ran(state: str) -> dict[str, str]:
    if state == "expired":
        return {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
    return {
        "code": "batch_cancelled",
        "message": "This request was not executed: the batch was cancelled.",
    }


def _missing(kind: str, name: str) -> web.Response:
    return openai_error(404, f"No such {kind}: '{name}'", "invalid_request_error", None)
