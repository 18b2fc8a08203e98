"""The simulator checks requests like the vendors do, and takes faults at run time."""

from __future__ import annotations

import copy
from typing import Any

import httpx
import pytest

from devstack.harness import SimulatorThread
from llm_sim import DEFAULT_API_KEY
from streams.providers.structured import ANTHROPIC, GEMINI, LLAMA_CPP, OPENAI_STRICT, schema_for
from streams.schemas import enrichment_schema

AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
MESSAGES = [{"role": "user", "content": "Title: Engineer\nDescription:\nPython. Remote."}]


def test_a_wrong_key_gets_the_vendor_auth_error(sim: SimulatorThread) -> None:
    response = httpx.post(
        f"{sim.url}/openai/v1/chat/completions",
        json={"model": "gpt-5.4-mini", "messages": MESSAGES},
        headers={"Authorization": "Bearer wrong"},
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_requests_the_vendor_would_reject_get_a_400(sim: SimulatorThread) -> None:
    url = f"{sim.url}/openai/v1/chat/completions"
    reasoning_with_max_tokens = {"model": "gpt-5.4-mini", "messages": MESSAGES, "max_tokens": 10}
    response = httpx.post(url, json=reasoning_with_max_tokens, headers=AUTH)
    assert response.status_code == 400
    assert "max_completion_tokens" in response.json()["error"]["message"]

    no_json_word = {
        "model": "deepseek-v4-flash",
        "messages": [{"role": "user", "content": "hello"}],
        "response_format": {"type": "json_object"},
    }
    response = httpx.post(f"{sim.url}/deepseek/chat/completions", json=no_json_word, headers=AUTH)
    assert response.status_code == 400
    assert "json" in response.json()["error"]["message"]

    unknown_model = {"model": "gpt-0", "messages": MESSAGES}
    assert httpx.post(url, json=unknown_model, headers=AUTH).status_code == 404


def test_faults_are_validated_and_applied(sim: SimulatorThread) -> None:
    bad = httpx.put(f"{sim.url}/_sim/faults/openai", json={"errors": {"500": 3}})
    assert bad.status_code == 422
    assert httpx.put(f"{sim.url}/_sim/faults/nobody", json={}).status_code == 404

    sim.set_faults("openai", errors={429: 1.0}, retry_after_s=2)
    response = httpx.post(
        f"{sim.url}/openai/v1/chat/completions",
        json={"model": "gpt-5.4-mini", "messages": MESSAGES},
        headers=AUTH,
    )
    assert response.status_code == 429
    assert response.headers["retry-after"] == "2"


def test_matching_limits_faults_to_some_requests(sim: SimulatorThread) -> None:
    sim.set_faults("deepseek", errors={500: 1.0}, match="Title: Doomed")
    url = f"{sim.url}/deepseek/chat/completions"

    def ask(title: str) -> int:
        content = f"Title: {title}\nDescription:\nAnswer in json."
        body = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": content}]}
        return httpx.post(url, json=body, headers=AUTH).status_code

    assert ask("Doomed") == 500
    assert ask("Fine") == 200


def test_anthropic_checks_headers_and_roles(sim: SimulatorThread) -> None:
    url = f"{sim.url}/anthropic/v1/messages"
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": MESSAGES}
    no_version = httpx.post(url, json=body, headers={"x-api-key": DEFAULT_API_KEY})
    assert no_version.status_code == 400
    assert "anthropic-version" in no_version.json()["error"]["message"]
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    system_role = body | {"messages": [{"role": "system", "content": "x"}, *MESSAGES]}
    assert httpx.post(url, json=system_role, headers=headers).status_code == 400
    missing = {"model": "claude-haiku-4-5", "messages": MESSAGES}
    assert "max_tokens" in httpx.post(url, json=missing, headers=headers).json()["error"]["message"]
    wrong = httpx.post(url, json=body, headers=headers | {"x-api-key": "nope"})
    assert wrong.json()["error"]["type"] == "authentication_error"


def test_gemini_answers_a_bad_key_with_400_api_key_invalid(sim: SimulatorThread) -> None:
    url = f"{sim.url}/gemini/v1beta/models/gemini-2.5-flash-lite:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "Title: x"}]}]}
    wrong = httpx.post(url, json=body, headers={"x-goog-api-key": "nope"})
    assert wrong.status_code == 400
    assert wrong.json()["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert httpx.post(url, json=body, params={"key": DEFAULT_API_KEY}).status_code == 200
    empty = httpx.post(url, json={}, headers={"x-goog-api-key": DEFAULT_API_KEY})
    assert empty.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_fault_rates_must_add_up(sim: SimulatorThread) -> None:
    response = httpx.put(f"{sim.url}/_sim/faults/openai", json={"errors": {"429": 0.7, "500": 0.6}})
    assert response.status_code == 422
    assert "add up" in response.text


def test_cache_markers_are_checked_like_the_vendors_do(sim: SimulatorThread) -> None:
    url = f"{sim.url}/anthropic/v1/messages"
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"}
    body = {"model": "claude-haiku-4-5", "max_tokens": 10, "messages": MESSAGES}

    def system(*markers: dict[str, str]) -> dict[str, object]:
        blocks = [
            {"type": "text", "text": f"rule {n}", "cache_control": m} for n, m in enumerate(markers)
        ]
        return body | {"system": blocks}

    ephemeral = {"type": "ephemeral"}
    assert httpx.post(url, json=system(ephemeral), headers=headers).status_code == 200
    five = httpx.post(url, json=system(*[ephemeral] * 5), headers=headers)
    assert five.status_code == 400
    assert "maximum of 4 blocks with cache_control" in five.json()["error"]["message"]
    for bad in ({"type": "persistent"}, {"type": "ephemeral", "ttl": "10m"}):
        assert httpx.post(url, json=system(bad), headers=headers).status_code == 400
    empty = body | {"system": [{"type": "text", "text": "", "cache_control": ephemeral}]}
    assert httpx.post(url, json=empty, headers=headers).status_code == 400

    openai = {"model": "gpt-5.4-mini", "messages": MESSAGES, "prompt_cache_key": 7}
    response = httpx.post(f"{sim.url}/openai/v1/chat/completions", json=openai, headers=AUTH)
    assert response.status_code == 400
    assert "prompt_cache_key" in response.json()["error"]["message"]


def _structured(sim: SimulatorThread, vendor: str, schema: dict[str, Any]) -> httpx.Response:
    """One structured-output request to ``vendor``'s endpoint with ``schema``."""
    if vendor == "anthropic":
        return httpx.post(
            f"{sim.url}/anthropic/v1/messages",
            json={
                "model": "claude-haiku-4-5",
                "max_tokens": 300,
                "messages": MESSAGES,
                "output_config": {"format": {"type": "json_schema", "schema": schema}},
            },
            headers={"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01"},
        )
    if vendor == "gemini":
        return httpx.post(
            f"{sim.url}/gemini/v1beta/models/gemini-2.5-flash-lite:generateContent",
            json={
                "contents": [{"role": "user", "parts": [{"text": MESSAGES[0]["content"]}]}],
                "generationConfig": {
                    "responseMimeType": "application/json",
                    "responseJsonSchema": schema,
                },
            },
            headers={"x-goog-api-key": DEFAULT_API_KEY},
        )
    spec = {"name": "job_enrichment", "strict": True, "schema": schema}
    return httpx.post(
        f"{sim.url}/{vendor}/v1/chat/completions",
        json={
            "model": "gpt-5.4-mini" if vendor == "openai" else "local",
            "messages": MESSAGES,
            "response_format": {"type": "json_schema", "json_schema": spec},
        },
        headers=AUTH,
    )


@pytest.mark.parametrize(
    ("vendor", "accepted", "refused"),
    [
        ("openai", OPENAI_STRICT, "'maxLength' is not permitted"),
        ("anthropic", ANTHROPIC, "'maxLength' is not supported"),
        ("gemini", GEMINI, 'Unknown name "maxLength"'),
        ("compatible", LLAMA_CPP, None),
    ],
)
def test_a_vendor_refuses_keywords_it_does_not_take_and_accepts_what_we_send_it(
    sim: SimulatorThread, vendor: str, accepted: frozenset[str], refused: str | None
) -> None:
    whole = _structured(sim, vendor, enrichment_schema())
    if refused is None:  # llama.cpp's grammar leaves out what it cannot enforce
        assert whole.status_code == 200
    else:
        assert whole.status_code == 400
        assert refused in whole.json()["error"]["message"]
    assert _structured(sim, vendor, schema_for(accepted)).status_code == 200


def test_openai_strict_mode_wants_every_object_closed_and_fully_required(
    sim: SimulatorThread,
) -> None:
    schema = schema_for(OPENAI_STRICT)
    open_salary = copy.deepcopy(schema)
    open_salary["properties"]["salary"]["additionalProperties"] = True
    response = _structured(sim, "openai", open_salary)
    assert response.status_code == 400
    assert "('properties', 'salary'), 'additionalProperties'" in response.text
    optional = copy.deepcopy(schema)
    optional["required"].remove("summary")
    assert "Missing 'summary'" in _structured(sim, "openai", optional).text
