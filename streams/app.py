"""The composition root: builds every part from its slice of the settings, wires them into
one Faust app, and runs it."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

import faust
from pydantic import ValidationError

from streams.config.runtime import RuntimeConfig
from streams.config.settings import Settings
from streams.config.slices import ShadowCandidate
from streams.control.follower import ControlFollower, ControlState
from streams.errors import ConfigurationError, describe
from streams.kafka import backoff
from streams.kafka.outage import OutageLog, broker_reachable
from streams.kafka.preflight import ClusterFacts, inspect_cluster, prepare_topics
from streams.kafka.producer import FaustProducer, Producer
from streams.kafka.readers import Follower, Supervisor
from streams.kafka.rebalance import Rebalances
from streams.kafka.schema_registry import Registry, topic_contracts
from streams.kafka.security import faust_credentials
from streams.kafka.topics import Topics, topic_specs
from streams.models import MAX_DEADLINE_MS
from streams.observe.aggregate import Aggregator
from streams.observe.dead_letters import DeadLetterFollower
from streams.observe.drift import DriftFollower
from streams.observe.flow import FlowTopics, JobFlow
from streams.observe.job import DEFAULT_LOOK_BACK_S, JobLookup, JobTopics
from streams.observe.spend import SpendFollower, shadow_spend, tenant_spend
from streams.observe.tables import StatsStore, install_stats_agent
from streams.pipeline.agent import install_enrich_agent
from streams.pipeline.batch.finish import LaneFinisher
from streams.pipeline.batch.lane import BatchLane
from streams.pipeline.cache import RepostCache
from streams.pipeline.entry import Pipeline
from streams.pipeline.live import LiveLane
from streams.pipeline.once import PublishedBefore
from streams.pipeline.outcome import Outcomes
from streams.pipeline.sent import SentLog
from streams.pipeline.ticket import Intake
from streams.pipeline.unframe import RawValues
from streams.pipeline.waiting.lane import WaitingLane
from streams.pipeline.waiting.share import records_in_flight
from streams.providers.base import Provider
from streams.providers.batch import batch_apis
from streams.providers.build import adapter_for, build_providers
from streams.routing.journal import NO_JOURNAL, Journal
from streams.routing.limits import Share
from streams.routing.router import Router
from streams.shadow.answers import CandidateCalls
from streams.shadow.backfill import Backfill
from streams.shadow.runner import Shadows
from streams.telemetry.sdk import from_env as telemetry_from_env
from streams.telemetry.spans import Telemetry
from streams.web import server
from streams.web.handlers import Handlers

__all__ = [
    "REBALANCE_TIMEOUT_S",
    "StreamsApp",
    "backfill_for",
    "candidate_calls",
    "create_app",
    "job_lookup",
]

log = logging.getLogger(__name__)

# Rebalances and shutdown wait for records in flight, each bounded by its deadline; the
# group gives them the longest deadline a job may ask for, and this much more.
REBALANCE_MARGIN_S = 15.0
REBALANCE_TIMEOUT_S = MAX_DEADLINE_MS / 1000 + REBALANCE_MARGIN_S
BROKER_WATCH_S = 2.0


@dataclass(frozen=True, kw_only=True)
class StreamsApp:
    """The Faust app and the parts a caller may want to look at."""

    faust: faust.App
    topics: Topics
    router: Router
    control: ControlFollower
    stats: StatsStore
    cache: RepostCache | None
    readers: Supervisor
    shadows: Shadows

    @contextlib.asynccontextmanager
    async def running(self, *, ready_within_s: float = 60.0) -> AsyncIterator[StreamsApp]:
        """Run the worker inside the current event loop (for embedding, tests and
        benchmarks; ``llm-streams worker`` is the usual way). Returns once the worker has
        its partitions of the raw topic and its readers have caught up."""
        app = self.faust
        app.loop = asyncio.get_running_loop()
        app.finalize()
        await app.start()
        try:
            raw = self.topics.raw.name
            async with asyncio.timeout(ready_within_s):
                # Faust offers nothing to await for "partitions assigned": poll.
                while not any(tp.topic == raw for tp in app.consumer.assignment()):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
                await self.readers.ready()
            yield self
        finally:
            await app.stop()


async def create_app(
    settings: Settings, *, router: Router | None = None, telemetry: Telemetry | None = None
) -> StreamsApp:
    """A configured app, its topics made on the cluster (``streams.kafka.preflight``: a
    cluster that refuses the service raises ClusterRefused, saying why). ``router`` replaces
    the one built from settings (tests use it to inject failures the providers cannot
    produce); ``telemetry``, the one the ``OTEL_*`` variables ask for."""
    backoff.install()  # before any Kafka client starts
    for line in settings.concurrency_bounds():  # set on purpose, perhaps: said, not refused
        log.warning(line)
    cluster = settings.cluster()
    facts = await inspect_cluster(cluster)
    built = _build(settings, facts, router=router, telemetry=telemetry or telemetry_from_env())
    specs = topic_specs(built.faust, built.topics)
    await prepare_topics(cluster, facts, topics=specs, group=settings.llm_app_id)
    return built


def _build(
    settings: Settings, facts: ClusterFacts, *, router: Router | None, telemetry: Telemetry
) -> StreamsApp:
    """Every part, wired into one Faust app (nothing connects yet)."""
    kafka = settings.kafka()
    app = _faust_app(settings, facts)
    topics, raw_values = _registered(settings, Topics.of(kafka))
    producer = FaustProducer(app)
    providers = build_providers(settings.provider)
    journal = _journal(settings, topics, producer)
    router = router or Router(settings.routing(), providers, telemetry=telemetry, journal=journal)
    cache = _repost_cache(settings)
    published = _published_before(settings)
    pipeline, shadows = _pipeline(
        settings,
        topics=topics,
        producer=producer,
        raw_values=raw_values,
        router=router,
        cache=cache,
        providers=providers,
        remember=published.remember,
        telemetry=telemetry,
    )
    control = ControlFollower(
        ControlState(RuntimeConfig(settings), router, shadows=shadows),
        cluster=kafka.cluster,
        topic=settings.llm_topic_control,
    )
    rebalances = Rebalances(app, topic=topics.raw.name)
    _run_lanes(app, rebalances, pipeline)

    dead_letters = DeadLetterFollower(cluster=kafka.cluster, topic=topics.dead_letter.name)
    flow = _job_flow(settings, topics)
    drift = DriftFollower(settings.drift())
    stats_path = _stats_path(settings, topics, router, shadows)
    readers = Supervisor([control, *stats_path, dead_letters, drift, *([cache] if cache else [])])
    app.task(readers.run)
    _follow_share(rebalances, routers=[router, shadows], of=kafka.partitions)
    _watch_broker(app)
    install_enrich_agent(
        app,
        rebalances=rebalances,
        topics=topics,
        pipeline=pipeline,
        published=published,
        concurrency=records_in_flight(settings.llm_worker_concurrency),
        revoke_grace_s=settings.llm_revoke_grace_s,
        ready=control.ready,
    )

    _close_at_shutdown(
        app, [shadows.close, *(p.aclose for p in providers.values()), flow.close, telemetry.flush]
    )
    stats = StatsStore(app, topics=topics)
    install_stats_agent(app, stats, topics=topics)
    handlers = Handlers(
        app=app,
        config=settings.web(),
        topics=topics,
        producer=producer,
        control=control,
        stats=stats,
        pipeline=pipeline,
        flow=flow,
        dead_letters=dead_letters,
        drift=drift,
        job_lookup=job_lookup(settings),
    )
    server.install(app, handlers, tables=stats.totals)
    return StreamsApp(
        faust=app,
        topics=topics,
        router=router,
        control=control,
        stats=stats,
        cache=cache,
        readers=readers,
        shadows=shadows,
    )


def _repost_cache(settings: Settings) -> RepostCache | None:
    config = settings.cache()
    # Not waited for at start-up: until it has read the topic, a repost costs a call.
    return RepostCache(config) if config is not None else None


def _pipeline(
    settings: Settings,
    *,
    topics: Topics,
    producer: Producer,
    raw_values: RawValues,
    router: Router,
    cache: RepostCache | None,
    providers: dict[str, Provider],
    remember: Callable[[str], None],
    telemetry: Telemetry,
) -> tuple[Pipeline, Shadows]:
    """The ticket office, the live and batch lanes, the one sink they finish through, and
    the shadow candidates it hands the jobs answered on to."""
    shadows = Shadows(
        settings.shadow(),
        routing=settings.routing(),
        providers=providers,
        topics=topics,
        price_version=settings.llm_price_version,
        provider_over_budget=router.over_budget,
        producer=producer,
        telemetry=telemetry,
        journal=router.journal,
    )
    apis = batch_apis(providers)
    outcomes = Outcomes(
        topics=topics,
        price_version=settings.llm_price_version,
        cache=cache,
        remember=remember,
        telemetry=telemetry,
        producer=producer,
        shadow=shadows.offer,
        journal=router.journal,
    )
    live = LiveLane(router=router, outcomes=outcomes, cache=cache)
    batch_config = settings.batch()
    finisher = LaneFinisher(
        outcomes=outcomes,
        live=live,
        request_for=lambda entry: router.request_for(entry.job),
        base_urls={name: provider.config.base_url for name, provider in providers.items()},
        telemetry=telemetry,
    )
    batch = BatchLane(
        config=batch_config,
        topic=topics.batch,
        producer=producer,
        apis=apis,
        finisher=finisher,
        may_spend=lambda name: not router.over_budget(name),
    )
    intake = Intake(
        router=router, default_lane=batch_config.default_lane, batch_providers=set(apis)
    )
    waiting = WaitingLane(
        config=settings.waiting(), topic=topics.waiting, producer=producer, router=router
    )
    pipeline = Pipeline(
        intake=intake,
        live=live,
        batch=batch,
        waiting=waiting,
        outcomes=outcomes,
        telemetry=telemetry,
        group=settings.llm_app_id,  # Faust's group is the app's id
        raw_values=raw_values,
    )
    return pipeline, shadows


def _registered(settings: Settings, topics: Topics) -> tuple[Topics, RawValues]:
    """With a Schema Registry: each data topic's schema registered (or the start refused),
    the topics framing their records with the ids, and the check of framed raw records."""
    config = settings.schema_registry()
    if config is None:
        return topics, RawValues()
    registry = Registry(config)
    ids = registry.register(topic_contracts(topics.all()))
    log.info("schemas registered at %s: %s", registry.url, ids)
    return topics.framed_with(ids), RawValues(registry=registry, own_id=ids[topics.raw.name])


def _journal(settings: Settings, topics: Topics, producer: Producer) -> Journal:
    """Where the routers record each call before it leaves (LLM_WRITE_AHEAD)."""
    if not settings.llm_write_ahead:
        return NO_JOURNAL
    return SentLog(
        topic=topics.sent,
        producer=producer,
        price_version=settings.llm_price_version,
        grace_s=settings.llm_unsettled_grace_s,
    )


def _stats_path(
    settings: Settings, topics: Topics, router: Router, shadows: Shadows
) -> list[Follower]:
    """The attempts summed into ``llm.stats`` (and the calls recorded as sent settled or
    estimated), and today's spend read back for the budgets (the shadow candidates' from
    ``llm.shadow``)."""
    kafka = settings.kafka()
    aggregator = Aggregator(
        cluster=kafka.cluster,
        calls=topics.calls,
        stats_topic=kafka.stats,
        group_id=f"{settings.llm_app_id}.stats",
        sent=topics.sent if settings.llm_write_ahead else None,
    )
    spend = SpendFollower(
        cluster=kafka.cluster,
        topic=kafka.stats,
        on_change=router.set_spent_today,
    )
    tenants = SpendFollower(
        cluster=kafka.cluster,
        topic=kafka.stats,
        on_change=router.set_tenant_spent_today,
        spent=tenant_spend,
    )
    shadow = SpendFollower(
        cluster=kafka.cluster,
        topic=kafka.shadow,
        on_change=shadows.set_spent_today,
        spent=shadow_spend,
    )
    return [aggregator, spend, tenants, shadow]


def _run_lanes(app: faust.App, rebalances: Rebalances, pipeline: Pipeline) -> None:
    """The batch and waiting lanes follow the raw partitions: stopped within the rebalance
    that takes them away (before another worker may start them), started when they are
    assigned; the waiting lane releases its jobs for as long as the worker runs."""
    batch, waiting = pipeline.batch, pipeline.waiting
    app.task(lambda: waiting.release(pipeline.released))

    async def revoked(partitions: frozenset[int]) -> None:
        if partitions:  # said, so an operator sees each rebalance that moved work
            log.info("rebalance: %d partitions of %s given back", len(partitions), rebalances.topic)
        await batch.revoked(sorted(partitions))
        await waiting.revoked(sorted(partitions))

    def assigned(partitions: frozenset[int]) -> None:
        batch.assigned(sorted(partitions))
        waiting.assigned(sorted(partitions))

    rebalances.follow(assigned=assigned, revoked=revoked)


def _close_at_shutdown(
    app: faust.App, closers: list[Callable[[], Coroutine[Any, Any, None]]]
) -> None:
    """The HTTP clients closed, and the spans and metrics still buffered exported."""

    async def close(sender: Any, **kwargs: Any) -> None:
        for closer in closers:
            await closer()

    app.on_before_shutdown.connect(close)  # type: ignore[arg-type]


def job_lookup(settings: Settings, *, look_back_s: float = DEFAULT_LOOK_BACK_S) -> JobLookup:
    """Finds one job's records on the topics (the web view's and ``llm-streams job``'s)."""
    kafka = settings.kafka()
    return JobLookup(
        cluster=kafka.cluster,
        window=settings.llm_worker_concurrency,
        look_back_s=look_back_s,
        topics=JobTopics(
            raw=kafka.raw,
            calls=kafka.calls,
            enriched=kafka.enriched,
            dead_letter=kafka.dead_letter,
            batch=kafka.batch,
            group_id=settings.llm_app_id,  # Faust's group is the app's id
        ),
    )


def backfill_for(settings: Settings, name: str) -> Backfill:
    """A backfill for candidate ``name`` (``candidate_calls``)."""
    kafka = settings.kafka()
    return Backfill(
        calls=candidate_calls(settings, name),
        cluster=kafka.cluster,
        topics=_registered(settings, Topics.of(kafka))[0],
        price_version=settings.llm_price_version,
        unsettled_grace_s=settings.llm_unsettled_grace_s if settings.llm_write_ahead else None,
    )


def candidate_calls(settings: Settings, name: str) -> CandidateCalls:
    """Calls to candidate ``name`` (provider/model[@variant]): the one LLM_SHADOW names
    so, else that model with the service's own prompt."""
    candidate = next((c for c in settings.shadow() if c.name == name), None)
    if candidate is None:
        provider, _, model = name.partition("/")
        try:
            candidate = ShadowCandidate.model_validate(
                {"provider": provider, "model": model, "sample": 1.0}
            )
        except ValidationError as exc:
            raise ConfigurationError(f"candidate {name!r}: {describe(exc)}") from None
    adapter = adapter_for(candidate.provider)(settings.provider(candidate.provider))
    return CandidateCalls(
        candidate=candidate,
        routing=settings.routing(),
        provider=adapter,
        batch_api=batch_apis({candidate.provider: adapter}).get(candidate.provider),
        poll_s=settings.llm_batch_poll_s,
    )


def _job_flow(settings: Settings, topics: Topics) -> JobFlow:
    return JobFlow(
        cluster=settings.cluster(),
        topics=FlowTopics(
            raw=topics.raw.name,
            enriched=topics.enriched.name,
            dead_letter=topics.dead_letter.name,
            group_id=settings.llm_app_id,  # Faust's group is the app's id
        ),
    )


def _follow_share(rebalances: Rebalances, *, routers: Sequence[Router | Shadows], of: int) -> None:
    """This worker's share of the group's limits follows the partitions it holds, set by the
    assignment that ends each rebalance."""

    def assigned(partitions: frozenset[int]) -> None:
        for router in routers:
            router.set_share(Share(held=len(partitions), of=of))

    rebalances.follow(assigned=assigned)


def _watch_broker(app: faust.App) -> None:
    """Tell a broker outage in a few log lines, and when it is over."""
    outage = OutageLog()
    outage.install()

    async def watch() -> None:
        while True:
            if outage.lost_at is not None and await broker_reachable(app):
                outage.reachable()
            await asyncio.sleep(BROKER_WATCH_S)

    app.task(watch)


def _published_before(settings: Settings) -> PublishedBefore:
    kafka = settings.kafka()
    return PublishedBefore(
        cluster=kafka.cluster,
        group_id=settings.llm_app_id,
        raw_topic=kafka.raw,
        outcome_topics=(kafka.enriched, kafka.dead_letter),
        # The longest deadline, the rebalance that moved the record, the session that had
        # to time out first, and the commit interval.
        longest_look_back_s=MAX_DEADLINE_MS / 1000
        + REBALANCE_TIMEOUT_S
        + settings.llm_broker_session_timeout_s
        + settings.llm_commit_interval_s,
    )


def _faust_app(settings: Settings, facts: ClusterFacts) -> faust.App:
    settings.llm_data_dir.mkdir(parents=True, exist_ok=True)
    cluster = settings.cluster()
    return faust.App(
        settings.llm_app_id,
        # Faust's aiokafka transport, made safe across a seek (streams.kafka.transport).
        broker=f"streams-kafka://{cluster.bootstrap_servers}",
        broker_credentials=faust_credentials(cluster.security),
        # For the topics Faust makes itself (the tables' changelogs, made on their start).
        topic_replication_factor=facts.replication_factor,
        store="memory://",
        datadir=str(settings.llm_data_dir),
        topic_partitions=settings.llm_topic_partitions,
        # Enough buffered records to keep every in-flight slot busy, and no more.
        stream_buffer_maxsize=max(64, 2 * settings.llm_worker_concurrency),
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        broker_session_timeout=settings.llm_broker_session_timeout_s,
        broker_heartbeat_interval=settings.llm_broker_session_timeout_s / 10,
        broker_commit_interval=settings.llm_commit_interval_s,
        consumer_group_instance_id=settings.llm_worker_id,
        web_host=settings.llm_service_host,
        web_port=settings.llm_service_port,
        web_bind=settings.llm_service_host,
        # These serve table data without authentication.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_metrics_enabled=False,
    )
