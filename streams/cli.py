"""``llm-streams``: the command line for the people who run and feed the service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, cast, get_args

import click

from streams.config.settings import Settings, load_settings
from streams.errors import StreamsError
from streams.jobs_file import Format, format_of, read_jobs
from streams.models import ControlCommand, DeadLetter, RawJob
from streams.vocab import PROVIDER_NAMES, ProviderName, Stage

__all__ = ["main"]


def _settings() -> Settings:
    try:
        return load_settings()
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None


def _parse_time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not an ISO 8601 time: {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(f"not a date (YYYY-MM-DD): {text!r}") from None


@click.group()
@click.version_option(package_name="llm-provider-streams")
def main() -> None:
    """Enrich job postings with LLMs over Kafka."""


@main.command()
@click.option(
    "--processes",
    default="1",
    show_default=True,
    metavar="N|auto",
    help="Worker processes in the group (auto: one per core); web ports from LLM_SERVICE_PORT up.",
)
def worker(processes: str) -> None:
    """Run a worker: consume jobs.raw, enrich, publish (settings from the environment)."""
    from streams.fleet import processes_for, run_fleet

    try:
        count = processes_for(processes)
    except ValueError:
        raise click.BadParameter(f"{processes!r}: a whole number >= 1, or auto") from None
    settings = _settings()
    if count > 1:
        sys.exit(run_fleet(count, port=settings.llm_service_port, data_dir=settings.llm_data_dir))
    from streams.app import create_app
    from streams.worker import Worker, use_uvloop

    use_uvloop()
    # The loop Faust's worker then runs on: the app is made (and the cluster checked) in it.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        app = loop.run_until_complete(create_app(settings)).faust
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    # Faust's own command line would read ours: hand it no arguments.
    sys.argv = sys.argv[:1]
    Worker(
        app,
        shutdown_timeout_s=settings.llm_shutdown_timeout_s,
        loglevel=settings.llm_service_log_level,
    ).execute_from_commandline()


@main.command()
@click.option(
    "--port",
    type=int,
    default=9092,
    show_default=True,
    help="The first node's client port; the others take the next ones.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".data/kafka"),
    show_default=True,
    help="Kept across restarts: the broker finds its topics again.",
)
@click.option(
    "--nodes",
    type=click.IntRange(min=1, max=9),
    default=1,
    show_default=True,
    help="Combined broker-and-controller nodes; topics replicated min(3, nodes) times.",
)
@click.option(
    "--sasl",
    is_flag=True,
    help="A SASL_SSL listener (SCRAM-SHA-512, a CA it makes), ACLs on, and the service's "
    "principal given exactly the README's ACLs.",
)
def broker(port: int, data_dir: Path, nodes: int, sasl: bool) -> None:
    """Run a local Apache Kafka (KRaft) from the official jars until Ctrl-C: one broker, or a
    cluster. Prints 'ready HOST:PORT,...', then the settings a worker needs."""
    from devstack.broker import LocalKafka

    kafka = LocalKafka(data_dir=data_dir, port=port, nodes=nodes, sasl=sasl)
    # The handler only asks; kafka.wait() returns once the brokers have shut down.
    with _stop_on_signals(kafka.terminate):
        try:
            bootstrap = kafka.start()
        except StreamsError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"ready {bootstrap}")
        for name, value in kafka.client_env().items():
            click.echo(f"{name}={value}")
        sys.stdout.flush()
        code = kafka.wait()
    kafka.stop()
    if code not in (0, -signal.SIGTERM, 143):
        raise click.ClickException(f"Kafka exited with code {code}; see {kafka.output_path}")


@main.command()
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--topic", default=None, help="Default: LLM_TOPIC_RAW (jobs.raw).")
@click.option(
    "--format",
    "format_",
    type=click.Choice(["jsonl", "csv"]),
    default=None,
    help="Default: csv for a .csv file, else JSON lines.",
)
def produce(file: Any, topic: str | None, format_: Format | None) -> None:
    """Publish jobs from FILE ('-' for stdin), JSON lines or CSV with a header (columns
    named like RawJob's fields), keyed by job_id.

    Every job is checked against RawJob first; rejected lines are named by number and
    not sent, and the exit code is 1 if there were any."""
    settings = _settings()
    jobs, rejected = read_jobs(file.read(), format=format_of(file.name, format_))
    for line in rejected:
        click.echo(line, err=True)
    try:
        sent = asyncio.run(_produce(settings, topic or settings.llm_topic_raw, jobs))
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"sent {sent} jobs to {topic or settings.llm_topic_raw}; rejected {len(rejected)}")
    if rejected:
        sys.exit(1)


@main.command()
@click.option(
    "--since",
    type=_parse_time,
    metavar="TIME",
    default=None,
    help="Only dead letters from this time on (ISO 8601; UTC unless it says otherwise).",
)
@click.option("--stage", type=click.Choice(get_args(Stage)), default=None)
@click.option(
    "--error",
    "error_type",
    default=None,
    help="Error type of the dead letter (ValidationError) or an attempt (ProviderUnavailable).",
)
@click.option("--job-id", "job_ids", multiple=True, help="Repeat for several jobs.")
@click.option(
    "--dry-run",
    is_flag=True,
    help="Show what would be replayed and what it would cost; publish nothing.",
)
@click.option("--force", is_flag=True, help="Replay dead letters that were replayed before.")
def replay(
    since: datetime | None,
    stage: Stage | None,
    error_type: str | None,
    job_ids: tuple[str, ...],
    dry_run: bool,
    force: bool,
) -> None:
    """Republish dead letters' original records to jobs.raw (same key), each only once."""
    from streams.control.replay import Selection
    from streams.control.replay import replay as run_replay

    selection = Selection(
        since=since, stage=stage, error_type=error_type, job_ids=frozenset(job_ids)
    )
    outcomes = asyncio.run(
        run_replay(_settings(), selection=selection, dry_run=dry_run, force=force)
    )
    for outcome in outcomes:
        letter = outcome.letter
        click.echo(
            f"{outcome.verdict:<16} {outcome.where}  job {letter.job_id or '-'}  "
            f"{letter.stage}: {letter.error.type}"
        )
    counts = Counter(outcome.verdict for outcome in outcomes)
    summary = ", ".join(f"{n} {verdict}" for verdict, n in sorted(counts.items()))
    click.echo(f"{len(outcomes)} dead letters selected" + (f": {summary}" if summary else ""))
    if dry_run:
        letters = [o.letter for o in outcomes if o.verdict == "would replay"]
        _echo_estimate(letters)


def _echo_estimate(letters: list[DeadLetter]) -> None:
    from streams.observe import estimate

    settings = _settings()
    jobs = estimate.first_providers(letters, settings.llm_provider_chain)
    figures = estimate.estimates(jobs, asyncio.run(estimate.totals_so_far(settings)))
    total = 0.0
    for row in figures:
        if row.provider == estimate.NO_CALL:
            click.echo(f"  {row.jobs} jobs are not valid jobs: dead-lettered again, no call")
            continue
        if row.usd is None:
            click.echo(f"  {row.provider}: {row.jobs} jobs, no cost observed there yet")
            continue
        total += row.usd
        click.echo(
            f"  {row.provider}: {row.jobs} jobs x ${row.usd_per_job:.6f} a job, "
            f"{row.cache_hit_rate:.0%} served by the repost cache: about ${row.usd:.4f}"
        )
    click.echo(f"estimated cost of the replay: about ${total:.4f} (from the statistics so far)")


@main.command()
@click.option("--from", "first", type=_parse_day, required=True, metavar="DATE")
@click.option("--to", "last", type=_parse_day, required=True, metavar="DATE")
@click.option("--format", "format_", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--url",
    default=None,
    help="A worker's web view. Default: LLM_SERVICE_HOST and LLM_SERVICE_PORT.",
)
@click.option(
    "--reprice",
    is_flag=True,
    help="Rebuild the figures from llm.calls at the current price table (LLM_PRICES).",
)
@click.option(
    "--by",
    type=click.Choice(["provider", "tenant"]),
    default="provider",
    show_default=True,
    help="Rows per provider, or per tenant (each call counts for its job's tenant).",
)
def report(first: date, last: date, format_: str, url: str | None, reprice: bool, by: str) -> None:
    """Usage per provider (or tenant) and day, from DATE to DATE inclusive (UTC days)."""
    from streams.observe import report as reports

    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    settings = _settings()
    try:
        figures = (
            asyncio.run(
                reports.from_ledger(
                    settings, first=first, last=last, by=cast(reports.By, by), reprice=reprice
                )
            )
            if reprice
            else reports.from_web_view(
                url or f"http://{settings.llm_service_host}:{settings.llm_service_port}",
                first=first,
                last=last,
                by=cast(reports.By, by),
            )
        )
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(reports.render(figures, format=cast(reports.Format, format_)))


async def _produce(settings: Settings, topic: str, jobs: list[RawJob]) -> int:
    from streams.client import JobsClient
    from streams.kafka.admin import ensure_topic
    from streams.telemetry.propagation import in_environment_trace
    from streams.telemetry.sdk import from_env

    # A topic auto-created by the first send would get the broker's partition count.
    await ensure_topic(settings.cluster(), topic, partitions=settings.llm_topic_partitions)
    from_env()  # the global tracer, when OTEL_* asks for one: a send span per job
    async with JobsClient(
        cluster=settings.cluster(),
        raw_topic=topic,
        schema_registry=settings.schema_registry(),  # framed when one is configured
    ) as client:
        with (
            click.progressbar(length=len(jobs), label="publishing", file=sys.stderr) as bar,
            in_environment_trace(),
        ):
            return await client.publish(jobs, progress=lambda done: bar.update(done - bar.pos))


@main.command()
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON (GET /jobs/ID's).")
@click.option(
    "--days",
    type=click.FloatRange(min=0, min_open=True),
    default=7,
    show_default=True,
    help="How far back to look on the topics.",
)
def job(job_id: str, as_json: bool, days: float) -> None:
    """Where one job is and how it got there: its state, attempts (provider, model,
    outcome, latency, tokens, cost), lineage, trace id and time line, read from the topics
    (for the whole group). Exit code 1 when no topic has a record of it."""
    from streams.app import job_lookup
    from streams.observe.job_text import render_job

    lookup = job_lookup(_settings(), look_back_s=days * 86400)
    report = asyncio.run(lookup.find(job_id))
    if report is None:
        click.echo(f"no record of job {job_id!r} in the last {days:g} days", err=True)
        sys.exit(1)
    click.echo(report.model_dump_json(indent=2) if as_json else render_job(report))


@main.command()
@click.option(
    "--from", "since", type=_parse_time, default=None, help="ISO time; default: all kept."
)
@click.option("--to", "until", type=_parse_time, default=None, help="ISO time; default: now.")
@click.option("--candidate", default=None, metavar="P/MODEL", help="One candidate only.")
@click.option("--format", "format_", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--backfill",
    type=click.IntRange(min=1),
    default=None,
    metavar="N",
    help="Run --candidate over the last N enriched jobs first (its Batch API where it has one).",
)
@click.option("--dry-run", is_flag=True, help="With --backfill: print the estimate only.")
def compare(
    since: datetime | None,
    until: datetime | None,
    candidate: str | None,
    format_: str,
    backfill: int | None,
    dry_run: bool,
) -> None:
    """Shadow candidates against production (``llm.shadow``): agreement per field and
    overall with 95 % intervals, invalid and failure rates, latency, cost per 1,000 jobs and
    the projected monthly saving."""
    from streams.shadow.source import read_comparison
    from streams.shadow.text import render_csv, render_table

    settings = _settings()
    if backfill is not None:
        if candidate is None:
            raise click.UsageError("--backfill needs --candidate P/MODEL")
        if not asyncio.run(_backfill(settings, candidate, backfill, dry_run=dry_run)):
            return
    kafka = settings.kafka()
    reports = asyncio.run(
        read_comparison(
            kafka.cluster,
            shadow_topic=kafka.shadow,
            enriched_topic=kafka.enriched,
            since=since,
            until=until,
            candidate=candidate,
        )
    )
    if format_ == "json":
        click.echo(json.dumps([r.model_dump(mode="json") for r in reports], indent=2))
    else:
        click.echo(render_csv(reports) if format_ == "csv" else render_table(reports), nl=False)
        click.echo("" if format_ == "csv" else "\n", nl=False)


@main.command(name="eval")
@click.argument("eval_set", metavar="SET.jsonl", required=False, type=click.Path(path_type=Path))
@click.option(
    "--candidate", "candidates", multiple=True, metavar="P/MODEL[@variant]", help="Repeatable."
)
@click.option("--no-production", is_flag=True, help="Leave out production's chain.")
@click.option(
    "--lane",
    type=click.Choice(["auto", "live"]),
    default="auto",
    help="auto: a candidate's Batch API where its vendor has one.",
)
@click.option("--dry-run", is_flag=True, help="Print the cost estimate only.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="The first N items only.")
@click.option("--format", "format_", type=click.Choice(["table", "json", "csv"]), default="table")
@click.option(
    "--require",
    "requires",
    multiple=True,
    metavar="FIELD=ACCURACY",
    help="Exit 1 when FIELD (or 'overall') is below ACCURACY. Repeatable.",
)
@click.option(
    "--baseline", metavar="RUN_ID", default=None, help="Exit 1 on a field fallen below it."
)
@click.option("--history", is_flag=True, help="Print the runs recorded so far instead.")
@click.option("--field", default="overall", help="With --history: the field shown.")
def eval_(
    eval_set: Path | None,
    candidates: tuple[str, ...],
    no_production: bool,
    lane: str,
    dry_run: bool,
    limit: int | None,
    format_: str,
    requires: tuple[str, ...],
    baseline: str | None,
    history: bool,
    field: str,
) -> None:
    """Score candidates (and production's chain) on a labelled set of jobs, field by field;
    with --require, a gate for prompt and model changes. An item answered before for the
    same candidate, prompt version and item text is not paid for again."""
    from streams.evals.gate import failures, parse_requirement
    from streams.evals.sets import load_set
    from streams.evals.text import render_csv, render_history, render_table

    settings = _settings()
    if history:
        runs = asyncio.run(_eval_store(settings).read())[1]
        click.echo(render_history(runs, field=field))
        return
    if eval_set is None:
        raise click.UsageError("SET.jsonl is needed (or --history)")
    try:
        required = dict(parse_requirement(text) for text in requires)
        loaded = load_set(eval_set)
    except (ValueError, StreamsError) as exc:
        raise click.ClickException(str(exc)) from None
    runs, before = asyncio.run(
        _evaluate(
            settings,
            loaded if limit is None else loaded.first(limit),
            candidates,
            production=not no_production,
            live=lane == "live",
            dry_run=dry_run,
            baseline=baseline,
        )
    )
    if dry_run:
        return
    if format_ == "json":
        click.echo(json.dumps([r.model_dump(mode="json") for r in runs], indent=2))
    else:
        click.echo(render_csv(runs) if format_ == "csv" else render_table(runs), nl=False)
        click.echo("" if format_ == "csv" else "\n", nl=False)
    refused = [
        line
        for run in runs
        for line in failures(run.score, required=required, baseline=before.get(run.score.candidate))
    ]
    for line in refused:
        click.echo(f"FAIL {line}", err=True)
    if refused:
        sys.exit(1)


def _eval_store(settings: Settings) -> Any:
    from streams.evals.store import EvalStore
    from streams.kafka.topics import Topics

    calls = Topics.of(settings.kafka()).calls
    return EvalStore(cluster=settings.cluster(), topic=settings.llm_topic_evals, calls=calls)


async def _evaluate(
    settings: Settings,
    loaded: Any,
    names: tuple[str, ...],
    *,
    production: bool,
    live: bool,
    dry_run: bool,
    baseline: str | None,
) -> tuple[list[Any], dict[str, Any]]:
    """The runs (none for a dry run) and the baseline's score by candidate."""
    from streams.kafka.topics import Topics
    from streams.pipeline.sent import command_line_journal

    store = _eval_store(settings)
    kept, runs = await store.read()
    before = {}
    if baseline is not None:
        found = [r for r in runs if r.run_id == baseline]
        if not found:
            raise click.ClickException(f"no evaluation run {baseline!r} (see --history)")
        before = {run.score.candidate: run.score for run in found}
    journal = command_line_journal(
        settings.cluster(),
        Topics.of(settings.kafka()).sent,
        price_version=settings.llm_price_version,
        grace_s=settings.llm_unsettled_grace_s
        if settings.llm_write_ahead and not dry_run
        else None,
    )
    async with journal as recorded:
        done = await _contest(
            settings,
            loaded,
            names,
            store=store,
            kept=kept,
            production=production,
            live=live,
            dry_run=dry_run,
            journal=recorded,
        )
    return done, before


async def _contest(
    settings: Settings,
    loaded: Any,
    names: tuple[str, ...],
    *,
    store: Any,
    kept: dict[str, Any],
    production: bool,
    live: bool,
    dry_run: bool,
    journal: Any,
) -> list[Any]:
    """The contestants' estimates printed, then (unless a dry run) their runs."""
    from streams.app import candidate_calls
    from streams.evals import run as evals
    from streams.evals.text import render_estimates
    from streams.providers.build import build_providers
    from streams.routing.router import Router

    contestants, closers = [], []
    try:
        for name in names:
            calls = candidate_calls(settings, name)
            closers.append(calls.provider.aclose)
            price = settings.llm_prices.get(calls.candidate.model)
            contestants.append(evals.candidate(calls, price=price, live=live, journal=journal))
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    if production:
        providers = build_providers(settings.provider)
        closers.extend(p.aclose for p in providers.values())
        router = Router(settings.routing(), providers, lane="shadow", journal=journal)
        price = settings.llm_prices.get(router.adapter(router.chain[0]).model)
        contestants.append(evals.production(router, price=price))
    if not contestants:
        raise click.UsageError(
            "nothing to evaluate: give --candidate, or leave out --no-production"
        )
    try:
        guesses = [evals.estimate(c, loaded.items, set(kept)) for c in contestants]
        click.echo(render_estimates(guesses), err=True)
        if dry_run:
            return []
        return await evals.evaluate(
            loaded,
            contestants,
            store=store,
            kept=kept,
            price_version=settings.llm_price_version,
            progress=lambda line: click.echo(line, err=True),
            journal=journal,
        )
    finally:
        for close in closers:
            await close()


async def _backfill(settings: Settings, name: str, count: int, *, dry_run: bool) -> bool:
    """Run the backfill (after printing its estimate); False when only the estimate was
    asked for."""
    from streams.app import backfill_for
    from streams.shadow.backfill import estimate

    try:
        run = backfill_for(settings, name)
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    jobs, already = await run.jobs(count)
    price = settings.llm_prices.get(run.candidate.model)
    guess = estimate(jobs, already_compared=already, price=price, batch=run.calls.by_batch())
    way = f"{run.candidate.provider}'s Batch API (batch rate)" if guess.batch else "live calls"
    cost = (
        "unknown (no price for the model)" if guess.cost_usd is None else f"${guess.cost_usd:.4f}"
    )
    click.echo(
        f"backfill {guess.jobs} jobs through {run.candidate.name} by {way}: estimated {cost} "
        f"(~{guess.input_tokens} input, ~{guess.output_tokens} output tokens); "
        f"{already} already compared, skipped",
        err=True,
    )
    if dry_run or not jobs:
        return False
    try:
        results = await run.run(jobs, progress=lambda line: click.echo(line, err=True))
    finally:
        await run.calls.provider.aclose()
    spent = sum(r.shadow.usage.cost_usd for r in results if r.shadow is not None)
    click.echo(f"backfill done: {len(results)} jobs, ${spent:.4f} spent", err=True)
    return True


@main.command()
@click.option("--topic", default=None, help="Default: LLM_TOPIC_ENRICHED (jobs.enriched).")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest record.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Stop after N records; without --from-beginning, starts N records back per partition.",
)
@click.option("--timeout", type=float, default=None, help="Stop after this many idle seconds.")
def tail(topic: str | None, from_beginning: bool, limit: int | None, timeout: float | None) -> None:
    """Print a topic's records as JSON lines on stdout."""
    settings = _settings()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _tail(
                settings,
                topic or settings.llm_topic_enriched,
                from_beginning=from_beginning,
                limit=limit,
                idle_s=timeout,
            )
        )


async def _tail(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_s: float | None,
) -> None:
    from aiokafka import TopicPartition

    from streams.kafka.admin import partitions_of
    from streams.kafka.clients import reader

    cluster = settings.cluster()
    partitions = await partitions_of(cluster, topic)
    if not partitions:
        raise click.ClickException(f"topic {topic!r} does not exist (yet)")
    async with reader(cluster) as consumer:
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        begins = await consumer.beginning_offsets(assigned)
        ends = await consumer.end_offsets(assigned)
        for tp in assigned:
            if from_beginning:
                start = begins[tp]
            elif limit:
                start = max(begins[tp], ends[tp] - limit)
            else:
                start = ends[tp]
            consumer.seek(tp, start)
        printed = 0
        while limit is None or printed < limit:
            batches = await consumer.getmany(
                timeout_ms=1000 if idle_s is None else int(idle_s * 1000)
            )
            if not batches and idle_s is not None:
                break
            for records in batches.values():
                for record in records:
                    click.echo(_as_json_line(record.value))
                    printed += 1
                    if limit is not None and printed >= limit:
                        return


def _as_json_line(value: bytes | None) -> str:
    """The record as one JSON line, framed for a Schema Registry or not (records that are
    not JSON are wrapped, not dropped)."""
    from streams.kafka.framing import payload_of

    if value is None:
        return "null"
    try:
        return json.dumps(json.loads(payload_of(value)), ensure_ascii=False, separators=(",", ":"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return json.dumps({"undecodable_value": value.decode("utf-8", errors="replace")})


@main.group()
def provider() -> None:
    """Switch a provider on or off on every worker (a command on the control topic)."""


@provider.command("enable")
@click.argument("name", type=click.Choice(PROVIDER_NAMES))
def provider_enable(name: str) -> None:
    """Route jobs to NAME again."""
    _control(ControlCommand(action="enable", provider=cast(ProviderName, name)))
    click.echo(f"enabled {name} on every worker")


@provider.command("disable")
@click.argument("name", type=click.Choice(PROVIDER_NAMES))
def provider_disable(name: str) -> None:
    """Stop routing jobs to NAME (jobs fall back to the rest of the chain)."""
    _control(ControlCommand(action="disable", provider=cast(ProviderName, name)))
    click.echo(f"disabled {name} on every worker")


@main.group()
def config() -> None:
    """Change settings on every running worker."""


@config.command("set")
@click.argument("assignments", nargs=-1, required=True)
def config_set(assignments: tuple[str, ...]) -> None:
    """Apply KEY=VALUE settings at run time, e.g. LLM_JOB_DEADLINE_S=30
    LLM_PROVIDER_CHAIN=gemini,openai. Validated like start-up settings first: an invalid
    patch is refused with the reason and nothing changes."""
    from streams.control.commands import parse_assignments

    try:
        patch = parse_assignments(assignments)
    except StreamsError as exc:
        raise click.BadParameter(str(exc)) from None
    _control(ControlCommand(action="set_config", config=patch))
    click.echo(f"set {', '.join(sorted(patch))} on every worker")


def _control(command: ControlCommand) -> None:
    from streams.config.runtime import RuntimeConfig
    from streams.control.commands import publish

    settings = _settings()
    try:
        asyncio.run(
            publish(
                command,
                config=RuntimeConfig(settings),
                cluster=settings.cluster(),
                topic=settings.llm_topic_control,
            )
        )
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None


@main.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("schemas"),
    show_default=True,
)
@click.option("--check", is_flag=True, help="Exit 1 if a file differs from its model.")
@click.option(
    "--check-registry",
    "registry_url",
    metavar="URL",
    default=None,
    help="Say per subject whether the models are compatible with what the Schema Registry "
    "at URL holds (its Confluent API); exit 1 if one is not. Topic names from the settings.",
)
@click.option(
    "--upgrade-registry",
    "upgrade_url",
    metavar="URL",
    default=None,
    help="Register the new major version of a contract (e.g. enriched-job version 2) in the "
    "Schema Registry at URL, which its compatibility check refuses by design; the rest as "
    "the worker registers them. Run it once the topic's consumers read the new version.",
)
def schemas(
    directory: Path, check: bool, registry_url: str | None, upgrade_url: str | None
) -> None:
    """Write the JSON Schema of every message into DIR (generated from the models)."""
    from streams.schemas import stale_contracts, write_contracts

    if upgrade_url is not None or registry_url is not None:
        _registry_command(upgrade_url or registry_url or "", upgrade=upgrade_url is not None)
        return
    if check:
        stale = stale_contracts(directory)
        if stale:
            raise click.ClickException(f"out of date: {', '.join(stale)} (run llm-streams schemas)")
        click.echo("schemas are up to date")
        return
    for path in write_contracts(directory):
        click.echo(f"wrote {path}")


def _registry_command(url: str, *, upgrade: bool) -> None:
    from streams.config.slices import RegistryConfig
    from streams.kafka.schema_registry import Registry, topic_contracts
    from streams.kafka.topics import Topics

    settings = _settings()
    registry = Registry(RegistryConfig(url=url, basic_auth=settings.llm_schema_registry_basic_auth))
    contracts = topic_contracts(Topics.of(settings.kafka()).all())
    try:
        if upgrade:
            upgraded = registry.upgrade(contracts)
            click.echo(f"upgraded: {', '.join(upgraded)}" if upgraded else "nothing to upgrade")
            return
        verdicts = registry.check(contracts)
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None
    for subject, change in verdicts.items():
        click.echo(f"{subject}: " + ("compatible" if change is None else f"INCOMPATIBLE: {change}"))
    if any(change is not None for change in verdicts.values()):
        sys.exit(1)


@main.command()
@click.option("--provider", type=click.Choice(PROVIDER_NAMES), default=None)
def batches(provider: ProviderName | None) -> None:
    """The batch lane of the whole group: batches out at the vendors, and jobs waiting."""
    from streams.kafka.admin import partitions_of
    from streams.pipeline.batch.records import recover

    settings = _settings()
    cluster, topic = settings.cluster(), settings.llm_topic_batch

    async def read() -> list[Any]:
        partitions = await partitions_of(cluster, topic)
        return [await recover(cluster, topic, p) for p in partitions]

    now = datetime.now(UTC)
    waiting: dict[tuple[str, str], int] = {}
    click.echo(
        "provider   model                  batch (vendor id)                          jobs  age"
    )
    for state in asyncio.run(read()):
        for batch in state.batches.values():
            if provider in (None, batch.provider):
                age = (now - batch.intent_at).total_seconds()
                vendor = batch.vendor_id or f"{batch.local_id} (sent, not acknowledged)"
                click.echo(
                    f"{batch.provider:<10} {batch.model:<22} {vendor:<42} "
                    f"{len(batch.jobs):>4}  {age:.0f}s"
                )
        for job in state.pending.values():
            if provider in (None, job.provider):
                key = (job.provider, job.model)
                waiting[key] = waiting.get(key, 0) + 1
    for (name, model), count in sorted(waiting.items()):
        click.echo(f"{name:<10} {model:<22} {'(waiting for a batch)':<42} {count:>4}")


@main.command()
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".data"))
@click.option(
    "--verbose", is_flag=True, help="The worker's log on the terminal, not a status block."
)
@click.option(
    "--traces",
    is_flag=True,
    help="Also a local Jaeger (built once with Go) receiving the worker's traces, unless "
    "OTEL_* already sends them somewhere.",
)
@click.option(
    "--schema-registry",
    is_flag=True,
    help="Also a local Schema Registry (Apicurio, from Maven Central) the worker registers "
    "the topics' schemas in and frames its records for, unless LLM_SCHEMA_REGISTRY_URL is set.",
)
@click.option(
    "--local-model",
    is_flag=True,
    help="Also a real model on loopback: llama.cpp's server (xllamacpp, installed on first use) "
    "with SmolLM2-135M-Instruct, tiny and poor (LLM_LOCAL_GGUF=PATH for a better one), first "
    "in the chain as the 'compatible' provider.",
)
def up(
    data_dir: Path, verbose: bool, traces: bool, schema_registry: bool, local_model: bool
) -> None:
    """The main job: a local broker (unless KAFKA_BOOTSTRAP_SERVERS is set), the simulator
    for every provider without a real key, and a worker; Ctrl-C stops them all. The terminal
    shows a live status block; the logs go to DATA_DIR/logs/."""
    from devstack.supervisor import run_stack

    try:
        sys.exit(
            run_stack(
                data_dir=data_dir,
                verbose=verbose,
                traces=traces,
                schema_registry=schema_registry,
                local_model=local_model,
            )
        )
    except StreamsError as exc:
        raise click.ClickException(str(exc)) from None


@contextlib.contextmanager
def _stop_on_signals(stop: Any) -> Iterator[None]:
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: stop())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
