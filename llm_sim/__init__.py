"""A loopback stand-in for the LLM vendors' HTTP APIs, for tests, benchmarks and the demo."""

from llm_sim.faults import Faults
from llm_sim.server import DEFAULT_API_KEY, Simulator, base_urls, serve

__all__ = ["DEFAULT_API_KEY", "Faults", "Simulator", "base_urls", "serve"]
