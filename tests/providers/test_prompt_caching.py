"""Prompt caching per vendor, against the simulator: the same static prefix twice, past each
vendor's minimum. The second call's cached tokens are read from the vendor's own usage
fields and priced at the vendor's published rates (USD per million tokens), checked here by
hand."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from devstack.harness import SimulatorThread
from llm_sim.dialect import tokens
from streams.deadline import Deadline
from streams.models import RawJob, Usage
from streams.providers import prompt
from streams.providers.base import EnrichRequest, Provider
from streams.providers.build import adapter_for
from tests.providers.helpers import JOB, config

# About 5,000 tokens of instructions: past every vendor's minimum (Claude Haiku 4.5: 4,096).
LONG_INSTRUCTIONS = "Read the whole posting before you answer, and answer in JSON. " * 320


@pytest.fixture
async def adapters(
    sim: SimulatorThread, unique: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[[str], Provider]]:
    # A prefix no other test sent, so the first call here is the cache's first sight of it.
    monkeypatch.setattr(prompt, "SYSTEM_PROMPT", f"{unique}. {LONG_INSTRUCTIONS}")
    made: list[Provider] = []

    def adapter(name: str) -> Provider:
        url = sim.env()[f"{name.upper()}_BASE_URL"]
        made.append(adapter_for(name)(config(name, url)))
        return made[-1]

    yield adapter
    for provider in made:
        await provider.aclose()


async def _twice(provider: Provider) -> tuple[Usage, Usage]:
    other = RawJob(job_id="c2", title="Site Reliability Engineer", description="Kubernetes.")
    first = await provider.enrich(EnrichRequest(job=JOB), deadline=Deadline.after(5))
    second = await provider.enrich(EnrichRequest(job=other), deadline=Deadline.after(5))
    return first.usage, second.usage


def _usd(*terms: tuple[int, float]) -> float:
    return sum(count * rate for count, rate in terms) / 1_000_000


async def test_openai_caches_the_prefix_in_128_token_steps(
    adapters: Callable[[str], Provider],
) -> None:
    first, second = await _twice(adapters("openai"))
    prefix = tokens(prompt.system_prompt(with_schema=False))
    assert first.cached_input_tokens == 0
    assert second.cached_input_tokens == prefix // 128 * 128
    plain = second.input_tokens - second.cached_input_tokens
    # gpt-5.4-mini: input 0.75, cached input 0.075, output 4.50
    cost = _usd((plain, 0.75), (second.cached_input_tokens, 0.075), (second.output_tokens, 4.50))
    assert second.cost_usd == pytest.approx(cost)
    assert second.prompt_cache_saved_usd == pytest.approx(
        _usd((second.cached_input_tokens, 0.75 - 0.075))
    )


async def test_anthropic_writes_the_marked_prefix_then_reads_it(
    adapters: Callable[[str], Provider],
) -> None:
    first, second = await _twice(adapters("anthropic"))
    prefix = tokens(prompt.system_prompt(with_schema=False))
    assert (first.cache_write_tokens, first.cached_input_tokens) == (prefix, 0)
    assert (second.cache_write_tokens, second.cached_input_tokens) == (0, prefix)
    # claude-haiku-4-5: input 1.00, 5-minute cache write 1.25, cache read 0.10, output 5.00
    first_cost = _usd(
        (first.input_tokens - prefix, 1.00), (prefix, 1.25), (first.output_tokens, 5.00)
    )
    second_cost = _usd(
        (second.input_tokens - prefix, 1.00), (prefix, 0.10), (second.output_tokens, 5.00)
    )
    assert first.cost_usd == pytest.approx(first_cost)
    assert second.cost_usd == pytest.approx(second_cost)
    assert first.prompt_cache_saved_usd == pytest.approx(-_usd((prefix, 0.25)))
    assert second.prompt_cache_saved_usd == pytest.approx(_usd((prefix, 0.90)))


async def test_gemini_implicit_cache(adapters: Callable[[str], Provider]) -> None:
    first, second = await _twice(adapters("gemini"))
    prefix = tokens(prompt.system_prompt(with_schema=False))
    assert first.cached_input_tokens == 0
    assert second.cached_input_tokens == prefix
    # gemini-2.5-flash-lite: input 0.10, cached input 0.01, output 0.40
    cost = _usd((second.input_tokens - prefix, 0.10), (prefix, 0.01), (second.output_tokens, 0.40))
    assert second.cost_usd == pytest.approx(cost)


async def test_deepseek_context_cache_in_64_token_units(
    adapters: Callable[[str], Provider],
) -> None:
    first, second = await _twice(adapters("deepseek"))
    hit = tokens(prompt.system_prompt(with_schema=True)) // 64 * 64
    assert first.cached_input_tokens == 0
    assert second.cached_input_tokens == hit
    # deepseek-v4-flash: cache miss 0.14, cache hit 0.0028, output 0.28
    cost = _usd((second.input_tokens - hit, 0.14), (hit, 0.0028), (second.output_tokens, 0.28))
    assert second.cost_usd == pytest.approx(cost)


async def test_the_service_prompt_alone_is_cached_by_deepseek_only(sim: SimulatorThread) -> None:
    """Without long instructions the static part is about 400 tokens: below OpenAI's,
    Gemini's and Claude Haiku's minimums, above DeepSeek's 64-token unit."""
    cached = {}
    for name in ("openai", "anthropic", "gemini", "deepseek"):
        url = sim.env()[f"{name.upper()}_BASE_URL"]
        provider = adapter_for(name)(config(name, url))
        try:
            _, second = await _twice(provider)
        finally:
            await provider.aclose()
        cached[name] = second.cached_input_tokens
    assert tokens(prompt.system_prompt(with_schema=True)) < 1024
    assert [name for name, count in cached.items() if count] == ["deepseek"]
