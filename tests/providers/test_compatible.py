"""The OpenAI-compatible provider against the simulator's dialect: the request a vLLM or
llama.cpp server takes, json_object mode with the schema in the prompt, and a configured
price for self-hosted capacity."""

from __future__ import annotations

from devstack.harness import SimulatorThread
from streams.deadline import Deadline
from streams.pricing import DEFAULT_PRICES, ModelPrice
from streams.providers.base import EnrichRequest
from streams.providers.compatible import CompatibleProvider
from tests.providers.helpers import JOB, Recorder, config, recorded

ANSWER = {
    "choices": [{"message": {"content": "{}"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1},
}


async def test_it_asks_with_max_tokens_a_strict_schema_and_no_openai_extras() -> None:
    recorder = Recorder(200, ANSWER)
    adapter = recorded("compatible", recorder, model="smollm2")
    _, body = adapter.build(EnrichRequest(job=JOB, max_tokens=300, temperature=0.1), "smollm2")
    await adapter.aclose()
    assert body["max_tokens"] == 300
    assert body["temperature"] == 0.1
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["strict"] is True
    assert "max_completion_tokens" not in body
    assert "prompt_cache_key" not in body
    assert "JSON Schema" not in body["messages"][0]["content"]


async def test_json_object_mode_puts_the_schema_in_the_prompt(sim: SimulatorThread) -> None:
    url = sim.env()["COMPATIBLE_BASE_URL"]
    adapter = CompatibleProvider(config("compatible", url, key=None, json_schema=False))
    try:
        _, body = adapter.build(EnrichRequest(job=JOB), "local")
        completion = await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    finally:
        await adapter.aclose()
    assert body["response_format"] == {"type": "json_object"}
    assert "JSON Schema" in body["messages"][0]["content"]
    assert completion.enrichment.salary is not None


async def test_self_hosted_capacity_is_priced_when_configured(sim: SimulatorThread) -> None:
    url = sim.env()["COMPATIBLE_BASE_URL"]
    prices = {**DEFAULT_PRICES, "my-llama": ModelPrice(input=0.05, cached_input=0.05, output=0.10)}
    adapter = CompatibleProvider(
        config("compatible", url, key=None, model="my-llama", prices=prices)
    )
    try:
        completion = await adapter.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    finally:
        await adapter.aclose()
    usage = completion.usage
    expected = (usage.input_tokens * 0.05 + usage.output_tokens * 0.10) / 1e6
    assert usage.cost_usd == round(expected, 10)
