"""The Faust app: topics, the enrich agent and the provider clients' lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import faust

from streams import web
from streams.agents import Enricher, InOrderAcks
from streams.cache import RepostCache
from streams.control import ControlFollower, ControlState
from streams.errors import ConfigurationError
from streams.providers import build_providers
from streams.router import Router
from streams.settings import Settings
from streams.stats import StatsStore
from streams.topics import Topics


@dataclass(frozen=True, kw_only=True)
class StreamsApp:
    """The Faust app and the parts a caller may want to look at."""

    faust: faust.App
    topics: Topics
    router: Router
    control: ControlFollower
    stats: StatsStore
    cache: RepostCache | None

    @contextlib.asynccontextmanager
    async def running(self, *, ready_within_s: float = 60.0) -> AsyncIterator[StreamsApp]:
        """Run the worker inside the current event loop (for embedding, tests and
        benchmarks; ``llm-streams worker`` is the usual way). Returns once the worker has
        its partitions of the raw topic."""
        app = self.faust
        app.loop = asyncio.get_running_loop()
        app.finalize()
        await app.start()
        try:
            raw = self.topics.raw.get_topic_name()
            async with asyncio.timeout(ready_within_s):
                # Faust offers nothing to await for "partitions assigned": poll.
                while not any(tp.topic == raw for tp in app.consumer.assignment()):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            yield self
        finally:
            await app.stop()


def create_app(settings: Settings, *, router: Router | None = None) -> StreamsApp:
    """A configured app. ``router`` replaces the one built from settings (tests use it to
    inject failures the providers cannot produce)."""
    settings.llm_data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.llm_app_id,
        # Faust's aiokafka transport, made safe across a seek (streams/transport.py).
        broker=f"streams-kafka://{settings.kafka_bootstrap_servers}",
        store="memory://",
        datadir=str(settings.llm_data_dir),
        topic_partitions=settings.llm_topic_partitions,
        # Enough buffered records to keep every in-flight slot busy, and no more.
        stream_buffer_maxsize=max(64, 2 * settings.llm_worker_concurrency),
        # Provider calls are bounded by the job deadline; rebalances wait for them.
        broker_rebalance_timeout=max(60.0, settings.llm_job_deadline_s + 15),
        broker_session_timeout=settings.llm_broker_session_timeout_s,
        broker_heartbeat_interval=settings.llm_broker_session_timeout_s / 10,
        broker_commit_interval=settings.llm_commit_interval_s,
        web_host=settings.llm_service_host,
        web_port=settings.llm_service_port,
        web_bind=settings.llm_service_host,
        # These serve table data without authentication.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_metrics_enabled=False,
    )
    topics = Topics.declare(app, settings)
    providers = build_providers(settings)
    router = router or Router(settings, providers)
    control = ControlFollower(settings, ControlState(settings, router))
    # Not waited for at start-up: until it has read the topic, a repost costs a call.
    cache = RepostCache(settings) if settings.llm_cache_enabled else None
    enricher = Enricher(
        topics=topics, router=router, price_version=settings.llm_price_version, cache=cache
    )

    async def follow_topics() -> None:
        await asyncio.gather(control.run(), *([cache.run()] if cache is not None else []))

    app.task(follow_topics)

    @app.agent(topics.raw, name="enrich", concurrency=1)
    async def enrich(stream: Any) -> None:
        manual = stream.noack()
        window = InOrderAcks(
            limit=settings.llm_worker_concurrency, ack=manual.ack, on_failure=app.crash
        )
        # Declared before the first send: a topic auto-created by a send would get the
        # broker's default partition count, not ours.
        try:
            await topics.check_partitions(settings.kafka_bootstrap_servers)
        except ConfigurationError as exc:
            await app.crash(exc)
            return
        await asyncio.gather(*(topic.maybe_declare() for topic in topics.all()))
        # A restarted worker must not route a job before it knows what was switched off.
        await control.replayed.wait()
        try:
            async for event in manual.events():
                await router.wait_for_capacity()
                await window.submit(event, enricher.handle(event))
        finally:
            await window.close()

    async def close_providers(sender: Any, **kwargs: Any) -> None:
        for provider in providers.values():
            await provider.aclose()

    app.on_before_shutdown.connect(close_providers)  # type: ignore[arg-type]

    stats = StatsStore(
        app, calls_topic=settings.llm_topic_calls, resets_topic=settings.llm_topic_stats_resets
    )
    web.install(
        app,
        settings=settings,
        topics=topics,
        router=router,
        control=control,
        stats=stats,
        enricher=enricher,
    )

    return StreamsApp(
        faust=app, topics=topics, router=router, control=control, stats=stats, cache=cache
    )
