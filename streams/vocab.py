"""The words every layer shares: provider names, attempt outcomes, pipeline stages.

A leaf: it imports nothing from this package, so messages, errors and settings can all use it.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "PROVIDER_NAMES",
    "TOTAL_BUDGET",
    "Lane",
    "LedgerOutcome",
    "Outcome",
    "ProviderName",
    "Stage",
]

# compatible: a self-hosted OpenAI-compatible server (vLLM, llama.cpp, LM Studio, SGLang, TGI).
ProviderName = Literal["openai", "anthropic", "gemini", "deepseek", "ollama", "compatible"]
PROVIDER_NAMES: tuple[ProviderName, ...] = get_args(ProviderName)
# The budget (LLM_BUDGETS) for the whole service, beside the providers' own.
TOTAL_BUDGET = "total"

# What one provider attempt came to, as recorded on ``llm.calls``.
Outcome = Literal[
    "success",
    "repaired",  # a second answer, asked with what was wrong with the first (or more room)
    "error",
    "timeout",
    "rate_limited",
    "invalid_output",
    "deadline_exceeded",
    "cache_hit",  # a repost served from the cache: no provider was called
]
# And what only the ledger says: a call recorded as sent by a worker that died before it
# said how the call ended (its usage estimated by another worker).
LedgerOutcome = Outcome | Literal["worker_lost"]

# How a job is answered: a call now, or a vendor's Batch API (about half the price, within a
# day), or whichever its deadline leaves room for.
Lane = Literal["live", "batch", "auto"]

# Where a record failed, on its way through the enrich agent.
Stage = Literal["decode", "validate", "enrich", "publish"]
