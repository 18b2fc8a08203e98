"""The simulator's Batch APIs refuse what the vendors refuse."""

from __future__ import annotations

import json
from typing import Any

import httpx

from devstack.harness import SimulatorThread

ENDPOINT = "/v1/chat/completions"


def test_the_simulator_refuses_batches_the_vendors_refuse(sim: SimulatorThread) -> None:
    env, key = sim.env(), sim.env()["OPENAI_API_KEY"]
    openai = f"{env['OPENAI_BASE_URL']}"
    auth = {"Authorization": f"Bearer {key}"}
    request = {"model": "gpt-5.4-mini", "messages": []}
    line = json.dumps({"custom_id": "a", "method": "POST", "url": ENDPOINT, "body": request})
    line += "\n"
    wrong_purpose = httpx.post(
        f"{openai}/files", headers=auth, files={"file": ("b.jsonl", line)}, data={"purpose": "nope"}
    )
    assert wrong_purpose.status_code == 400
    file_id = httpx.post(
        f"{openai}/files",
        headers=auth,
        files={"file": ("b.jsonl", line * 2)},
        data={"purpose": "batch"},
    ).json()["id"]
    create = {
        "input_file_id": file_id,
        "endpoint": ENDPOINT,
        "completion_window": "1h",
    }
    assert httpx.post(f"{openai}/batches", headers=auth, json=create).status_code == 400
    created = httpx.post(
        f"{openai}/batches", headers=auth, json=create | {"completion_window": "24h"}
    ).json()
    assert created["status"] == "validating", "validated after it is created, as OpenAI does"
    batch = httpx.get(f"{openai}/batches/{created['id']}", headers=auth).json()
    assert batch["status"] == "failed"
    assert batch["errors"]["data"][0]["code"] == "duplicate_custom_id"

    anthropic = env["ANTHROPIC_BASE_URL"]
    headers = {"x-api-key": env["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"}
    bad_id = {"requests": [{"custom_id": "has space", "params": {}}]}
    response = httpx.post(f"{anthropic}/v1/messages/batches", headers=headers, json=bad_id)
    assert response.status_code == 400
    assert "custom_id" in response.json()["error"]["message"]

    gemini = env["GEMINI_BASE_URL"]
    no_name: dict[str, Any] = {
        "batch": {"inputConfig": {"requests": {"requests": [{"request": {}}]}}}
    }
    response = httpx.post(
        f"{gemini}/v1beta/models/gemini-2.5-flash-lite:batchGenerateContent",
        headers={"x-goog-api-key": env["GOOGLE_API_KEY"]},
        json=no_name,
    )
    assert response.status_code == 400
    assert "display_name" in response.json()["error"]["message"]
