"""Shared pieces of the provider tests: a job, adapter configs, a recording transport, the
vendor examples and the official OpenAPI schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import jsonschema
from pydantic import SecretStr
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from llm_sim import DEFAULT_API_KEY
from streams.config.slices import ProviderConfig
from streams.models import RawJob
from streams.pricing import DEFAULT_PRICES, ModelPrice
from streams.providers.base import Provider
from streams.providers.build import adapter_for

DATA = Path(__file__).parent / "data"
JOB = RawJob(
    job_id="p1",
    title="Senior Data Engineer",
    description="7+ years Python, Spark and Kafka on AWS. Hybrid in Munich. EUR 90-110k per year.",
)
MODELS = {
    "openai": "gpt-5.4-mini",
    "anthropic": "claude-haiku-4-5",
    "gemini": "gemini-2.5-flash-lite",
    "deepseek": "deepseek-v4-flash",
    "ollama": "llama3.2",
    "compatible": "local",
}
VALID = json.dumps(
    {
        "summary": "s",
        "seniority": "mid",
        "role_family": "data",
        "skills": [],
        "tech_stack": [],
        "years_experience": None,
        "remote_policy": "unknown",
        "salary": None,
        "key_requirements": [],
    }
)
EXAMPLES: dict[str, Any] = json.loads((DATA / "provider_examples.json").read_text())


def config(
    name: str,
    base_url: str,
    *,
    key: str | None = DEFAULT_API_KEY,
    model: str | None = None,
    prices: dict[str, ModelPrice] = DEFAULT_PRICES,
    json_schema: bool = True,
) -> ProviderConfig:
    return ProviderConfig(
        name=name,
        base_url=base_url,
        api_key=SecretStr(key) if key else None,
        model=model or MODELS[name],
        connect_timeout_s=2.0,
        max_connections=10,
        prices=prices,
        json_schema=json_schema,
    )


class Recorder:
    """An httpx transport that records requests and answers with one canned response."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers = status, body, headers or {}
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body, headers=self.headers)

    @property
    def sent(self) -> Any:
        return json.loads(self.requests[-1].content)


def recorded(name: str, recorder: Recorder, *, model: str | None = None) -> Provider:
    """An adapter whose HTTP goes to ``recorder`` instead of the network."""
    adapter = adapter_for(name)(config(name, "http://vendor.invalid", model=model))
    adapter._client = httpx.AsyncClient(
        base_url=adapter.config.base_url,
        headers=adapter.auth_headers(),
        transport=httpx.MockTransport(recorder),
    )
    return adapter


def response(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, json=body, headers=headers or {})


def openapi_validator(document: str, schema: str) -> jsonschema.Draft202012Validator:
    """A validator for one schema of an official OpenAPI 3.1 document (JSON Schema 2020-12)."""
    contents = json.loads((DATA / document).read_text())
    resource = Resource.from_contents(contents, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:spec", resource)
    return jsonschema.Draft202012Validator(
        {"$ref": f"urn:spec#/components/schemas/{schema}"}, registry=registry
    )
