"""The provider simulator: all five vendor APIs on loopback, with faults on demand.

Each vendor's API is served under its own prefix (``/openai/v1``, ``/anthropic``, ``/gemini``,
``/deepseek``, ``/ollama``), checks keys and requests the way the vendor does and answers in the
vendor's shapes, with an Enrichment derived from the job text. Faults are set per provider at
start or at run time (``PUT /_sim/faults/{provider}``), decided by seeded dice.
"""

from __future__ import annotations

import asyncio
import json
import time
import weakref
from collections import Counter
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from llm_sim.anthropic import AnthropicDialect
from llm_sim.batches import mount_batch_apis
from llm_sim.batches.engine import BatchStore
from llm_sim.dialect import Call, Dialect
from llm_sim.enrichment import derive_enrichment
from llm_sim.faults import Dice, Fate, Faults, perturb, spoil
from llm_sim.gemini import GeminiDialect
from llm_sim.labels import Labels
from llm_sim.ollama import OllamaDialect
from llm_sim.openai import CompatibleDialect, DeepSeekDialect, OpenAIDialect

DEFAULT_API_KEY = "sim-key"
DIALECTS: tuple[type[Dialect], ...] = (
    OpenAIDialect,
    AnthropicDialect,
    GeminiDialect,
    DeepSeekDialect,
    OllamaDialect,
    CompatibleDialect,
)
HANG_S = 3600.0  # "never" answers: the client's timeout fires first


class Simulator:
    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        faults: dict[str, Faults] | None = None,
        seed: int = 0,
    ) -> None:
        self.seed = seed
        self.dialects = {d.provider: d(api_key=api_key) for d in DIALECTS}
        self.faults: dict[str, Faults] = {p: Faults() for p in self.dialects} | (faults or {})
        self.dice = {p: Dice(seed, p) for p in self.dialects}
        self.requests: Counter[str] = Counter()
        self.in_flight: Counter[str] = Counter()
        self.peak_in_flight: Counter[str] = Counter()
        self.arrivals: dict[str, list[float]] = {p: [] for p in self.dialects}
        self.batches = BatchStore(self)
        self.labels = Labels()  # empty: every answer by the keyword rules
        # Clients' connections to the vendor APIs, to see whether a client closes its own.
        self._connections: weakref.WeakSet[asyncio.BaseTransport] = weakref.WeakSet()

    def app(self) -> web.Application:
        # OpenAI takes batch input files of up to 200 MB (uploads beyond are refused here).
        app = web.Application(client_max_size=256 * 1024 * 1024)
        mount_batch_apis(app, self)  # first: Gemini's batch path would match its generate route
        for dialect in self.dialects.values():
            app.add_routes(dialect.routes(self._generate(dialect)))
        app.add_routes(
            [
                web.get("/_sim/faults", self._get_faults),
                web.put("/_sim/faults/{provider}", self._put_faults),
                web.delete("/_sim/faults", self._reset_faults),
                web.put("/_sim/labels", self._put_labels),
                web.get("/_sim/stats", self._stats),
                web.delete("/_sim/stats", self._reset_stats),
            ]
        )
        return app

    def _generate(self, dialect: Dialect) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            self.requests[dialect.provider] += 1
            if request.transport is not None:
                self._connections.add(request.transport)
            denied = dialect.auth_error(request)
            if denied is not None:
                return denied
            try:
                body = await request.json()
            except json.JSONDecodeError:
                body = None
            call = dialect.accept(request, body)
            if isinstance(call, web.StreamResponse):
                return call
            return await self._respond(dialect, call)

        return handler

    async def _respond(self, dialect: Dialect, call: Call) -> web.StreamResponse:
        provider = dialect.provider
        self.arrivals[provider].append(time.monotonic())
        self.in_flight[provider] += 1
        self.peak_in_flight[provider] = max(self.peak_in_flight[provider], self.in_flight[provider])
        try:
            return await self._answer(dialect, call)
        finally:
            self.in_flight[provider] -= 1

    async def _answer(self, dialect: Dialect, call: Call) -> web.StreamResponse:
        faults = self.faults[dialect.provider]
        fate = self.dice[dialect.provider].fate(faults, call.prompt)
        if fate.delay_s:
            await asyncio.sleep(fate.delay_s)
        if fate.hang:
            await asyncio.sleep(HANG_S)
        return self._outcome(dialect, call, fate)

    def _outcome(self, dialect: Dialect, call: Call, fate: Fate) -> web.StreamResponse:
        faults = self.faults[dialect.provider]
        if fate.error_status is not None:
            return dialect.error(fate.error_status, retry_after_s=faults.retry_after_s)
        answer = self.labels.overlay(call.user_text, derive_enrichment(call.user_text))
        if faults.perturb_model in (None, call.model):
            answer = perturb(answer, fate.perturbed)
        content = json.dumps(answer, ensure_ascii=False)
        output = fate.output
        if faults.repairable and call.follow_up and output in ("malformed", "schema_invalid"):
            output = None  # told what was wrong, it answers right
        below = faults.truncated_below
        if below is not None and call.max_tokens is not None and call.max_tokens < below:
            output = "truncated"
        content, truncated = spoil(content, output)
        return dialect.answer(call, content, truncated=truncated)

    def item_result(self, provider: str, body: Any, *, model: str | None) -> tuple[int, Any]:
        """One request of a batch, decided as a live one would be (its faults and dice, no
        delay): the status and JSON body the vendor would have answered."""
        dialect = self.dialects[provider]
        call = dialect.accept_body(body, model=model)
        if isinstance(call, web.Response):
            response: web.StreamResponse = call
        else:
            fate = self.dice[provider].fate(self.faults[provider], call.prompt)
            response = self._outcome(dialect, call, fate)
        assert isinstance(response, web.Response)
        assert isinstance(response.body, bytes)
        return response.status, json.loads(response.body)

    # --- the control API -----------------------------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({p: f.model_dump() for p, f in self.faults.items()})

    async def _put_faults(self, request: web.Request) -> web.Response:
        provider = request.match_info["provider"]
        if provider not in self.faults:
            return web.json_response({"error": f"unknown provider {provider!r}"}, status=404)
        try:
            faults = Faults.model_validate(await request.json())
        except (ValidationError, json.JSONDecodeError) as exc:
            return web.json_response({"error": str(exc)}, status=422)
        self.faults[provider] = faults
        self.dice[provider] = Dice(self.seed, provider)  # same faults, same fates
        return web.json_response(faults.model_dump())

    async def _reset_faults(self, request: web.Request) -> web.Response:
        self.faults = {p: Faults() for p in self.dialects}
        self.dice = {p: Dice(self.seed, p) for p in self.dialects}
        return web.json_response({"reset": True})

    async def _put_labels(self, request: web.Request) -> web.Response:
        """The labelled mode: an evaluation set's JSONL as the body (empty: off)."""
        try:
            items = self.labels.load(await request.text())
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        return web.json_response({"items": items})

    async def _stats(self, request: web.Request) -> web.Response:
        """Requests seen per provider, those being answered now and the most at once, when
        generation requests arrived (monotonic seconds, for rate checks), and clients'
        connections still open."""
        return web.json_response(
            {
                "requests": dict(self.requests),
                "in_flight": dict(self.in_flight),
                "open_connections": sum(not c.is_closing() for c in self._connections),
                "peak_in_flight": dict(self.peak_in_flight),
                "arrivals": self.arrivals,
                "batches_created": dict(self.batches.created),
                "batch_requests": dict(self.batches.requests),
            }
        )

    async def _reset_stats(self, request: web.Request) -> web.Response:
        self.requests.clear()
        self.peak_in_flight.clear()
        self.arrivals = {p: [] for p in self.dialects}
        self.batches.created.clear()
        self.batches.requests.clear()
        return web.json_response({"reset": True})


async def serve(
    simulator: Simulator, *, host: str = "127.0.0.1", port: int = 0
) -> tuple[web.AppRunner, int]:
    """Start serving; returns the runner (to clean up) and the bound port."""
    # handler_cancellation: a hung answer ends when its client gives up, as on a real server
    runner = web.AppRunner(simulator.app(), access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


def base_urls(host: str, port: int) -> dict[str, str]:
    """``{"OPENAI_BASE_URL": "http://127.0.0.1:P/openai/v1", ...}`` for every provider."""
    return {d.env_name: f"http://{host}:{port}{d.prefix}" for d in DIALECTS}
