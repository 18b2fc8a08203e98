"""The vendors' Batch APIs (OpenAI, Anthropic, Gemini) over one store of simulated batches."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from llm_sim.anthropic import AnthropicDialect
from llm_sim.batches.anthropic import AnthropicBatches
from llm_sim.batches.gemini import GeminiBatches
from llm_sim.batches.openai import OpenAIBatches
from llm_sim.gemini import GeminiDialect
from llm_sim.openai import OpenAIDialect


def mount_batch_apis(app: web.Application, simulator: Any) -> None:
    dialects, store = simulator.dialects, simulator.batches
    for api in (
        OpenAIBatches(_of(dialects["openai"], OpenAIDialect), store),
        AnthropicBatches(_of(dialects["anthropic"], AnthropicDialect), store),
        GeminiBatches(_of(dialects["gemini"], GeminiDialect), store),
    ):
        app.add_routes(api.routes())


def _of(dialect: Any, kind: type[Any]) -> Any:
    assert isinstance(dialect, kind)
    return dialect
