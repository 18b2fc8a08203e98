"""List prices per model, and the arithmetic that turns tokens into dollars.

A leaf, so the messages (which re-price raw usage) and the settings (which read a price table
from the environment) share one definition.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["DEFAULT_PRICES", "PRICE_VERSION", "ModelPrice"]

# The date the default table below was read from the vendors' price pages.
PRICE_VERSION = "2026-12-01"


class ModelPrice(BaseModel):
    """List price in USD per million tokens. Input tokens read from the vendor's prompt
    cache cost ``cached_input``; tokens written to it cost ``cache_write``, or the plain input
    rate where the vendor charges nothing extra (None)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    input: float = Field(ge=0)
    cached_input: float = Field(ge=0)
    cache_write: float | None = Field(default=None, ge=0)
    output: float = Field(ge=0)
    batch: float | None = Field(
        default=None,
        gt=0,
        le=1,
        description="the Batch API's price as a share of these; None: none",
    )

    def cost_usd(
        self,
        *,
        input_tokens: int,
        cached_input_tokens: int,
        output_tokens: int,
        cache_write_tokens: int = 0,
    ) -> float:
        """``input_tokens`` counts every prompt token, those read from and written to the
        cache included."""
        plain = max(input_tokens - cached_input_tokens - cache_write_tokens, 0)
        write_rate = self.input if self.cache_write is None else self.cache_write
        total = (
            plain * self.input
            + cached_input_tokens * self.cached_input
            + cache_write_tokens * write_rate
            + output_tokens * self.output
        )
        return round(total / 1_000_000, 10)


# The vendors' list prices on PRICE_VERSION; LLM_PRICES overrides any of them. Cache reads:
# OpenAI 0.1x input on gpt-5.x (0.25x on gpt-4.1, 0.5x on gpt-4o), Anthropic 0.1x, Gemini 0.1x
# (its current price table; implicit hits are "no cost saving guarantee"), DeepSeek its hit
# rate. Cache writes: Anthropic 1.25x for the 5-minute cache this service asks for; the
# others charge the input rate (OpenAI's 1.25x starts with gpt-5.6, not in this table).
# Batch APIs: OpenAI, Anthropic and Gemini charge half of every rate; DeepSeek and Ollama have
# none.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    "gpt-5.4-mini": ModelPrice(input=0.75, cached_input=0.075, output=4.50, batch=0.5),
    "gpt-5.4-nano": ModelPrice(input=0.20, cached_input=0.02, output=1.25, batch=0.5),
    "gpt-4.1-mini": ModelPrice(input=0.40, cached_input=0.10, output=1.60, batch=0.5),
    "gpt-4o-mini": ModelPrice(input=0.15, cached_input=0.075, output=0.60, batch=0.5),
    "claude-haiku-4-5": ModelPrice(
        input=1.00, cached_input=0.10, cache_write=1.25, output=5.00, batch=0.5
    ),
    "claude-sonnet-4-6": ModelPrice(
        input=3.00, cached_input=0.30, cache_write=3.75, output=15.00, batch=0.5
    ),
    "gemini-2.5-flash-lite": ModelPrice(input=0.10, cached_input=0.01, output=0.40, batch=0.5),
    "gemini-3.5-flash": ModelPrice(input=1.50, cached_input=0.15, output=9.00, batch=0.5),
    "deepseek-v4-flash": ModelPrice(input=0.14, cached_input=0.0028, output=0.28),
    "deepseek-v4-pro": ModelPrice(input=0.435, cached_input=0.003625, output=0.87),
}
