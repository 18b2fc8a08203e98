"""``llm-streams up``: the whole stack on one machine, for a first run and for demos.

Starts a local broker unless KAFKA_BOOTSTRAP_SERVERS is set, the simulator for every
provider in the chain that has no real key, then a worker wired to both; stops them all,
worker first, on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import httpx

from devstack.broker import LocalKafka
from devstack.broker.launcher import die_with_parent, port_is_free
from devstack.console import show_status
from devstack.local_model import MODEL_NAME, LocalModel
from devstack.registry import LocalRegistry
from devstack.traces import (
    JAEGER_VERSION,
    OTLP_HTTP,
    OTLP_HTTP_PORT,
    UI,
    ensure_jaeger,
    jaeger_binary,
    start_jaeger,
)
from llm_sim import DEFAULT_API_KEY
from streams.config.settings import load_settings
from streams.errors import StreamsError
from streams.registry import SPECS
from streams.telemetry.sdk import signal_exporters

LOG_TAIL_LINES = 30
# Children in sessions of their own: Ctrl-C reaches only `up`, which stops the worker first
# (it commits while the broker is still there); and they go when `up` dies, even by SIGKILL.
CHILD: dict[str, Any] = {"start_new_session": True, "preexec_fn": die_with_parent}


def is_real(provider: str, env: dict[str, str]) -> bool:
    """A provider with a key in the environment is used for real; so is one that needs no
    key (a local Ollama) whose address is given."""
    spec = SPECS[provider]
    if not spec.needs_key and env.get(spec.url_variable):
        return True
    return bool(env.get(spec.key_variable))


def _say(text: str) -> None:
    print(f"[up] {text}", flush=True)


def _start_simulator(
    env: dict[str, str], log: IO[bytes]
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_sim", "--api-key", DEFAULT_API_KEY],
        stdout=subprocess.PIPE,
        stderr=log,
        env=env,
        **CHILD,
    )
    assert process.stdout is not None
    urls: dict[str, str] = {}
    while len(urls) < len(SPECS):
        line = process.stdout.readline().decode().strip()
        if not line:
            raise StreamsError("the simulator exited before it was ready")
        name, _, value = line.partition("=")
        urls[name] = value
    return process, urls


def wait_until_consuming(
    health_url: str,
    worker: subprocess.Popen[bytes],
    *,
    stopping: Callable[[], bool] = lambda: False,
    timeout_s: float = 120.0,
) -> bool:
    """Whether the worker got its partitions (False if it died, we are stopping, or the
    timeout passed)."""
    deadline = time.monotonic() + timeout_s
    while not stopping() and worker.poll() is None and time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError, ValueError):
            if httpx.get(health_url, timeout=1).json().get("assigned_partitions"):
                return True
        time.sleep(0.3)
    return False


def _admin_token(env: dict[str, str], data_dir: Path) -> str:
    """Where the admin token comes from; a fresh one for this run when none is set, so the
    dashboard's buttons work, kept in a file only its owner can read, never printed."""
    if env.get("LLM_SERVICE_ADMIN_TOKEN"):
        return "admin: your LLM_SERVICE_ADMIN_TOKEN"
    token_file = data_dir / "admin-token"
    token_file.write_text(secrets.token_urlsafe(16))
    token_file.chmod(0o600)
    env["LLM_SERVICE_ADMIN_TOKEN"] = token_file.read_text()
    return f"admin: the token in {token_file}"


def _start_worker(env: dict[str, str], *, logs: Path, verbose: bool) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "streams", "worker"]
    if verbose:
        return subprocess.Popen(command, env=env, **CHILD)
    with (logs / "worker.log").open("ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, **CHILD)


def trace_destination(
    env: dict[str, str], *, wanted: bool, logs: Path
) -> subprocess.Popen[bytes] | None:
    """Where the worker's traces go, said; with ``wanted`` and nowhere set, a local Jaeger
    (returned, to be stopped with the stack)."""
    if signal_exporters("traces", env):
        where = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_TRACES_EXPORTER")
        _say(f"traces: to {where} (OTEL_* from the environment)")
        return None
    if not wanted:
        _say("traces: off (--traces starts a local Jaeger; or set OTEL_EXPORTER_OTLP_ENDPOINT)")
        return None
    if not port_is_free(OTLP_HTTP_PORT):
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_HTTP
        _say(f"traces: to the OTLP receiver already listening at {OTLP_HTTP}")
        return None
    log = (logs / "jaeger.log").open("ab")
    if not jaeger_binary().exists():
        _say(f"traces: building Jaeger {JAEGER_VERSION} from the Go module proxy (once; minutes)")
    jaeger = start_jaeger(ensure_jaeger(log), log, **CHILD)
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = OTLP_HTTP
    _say(f"traces: {UI}/search?service=llm-provider-streams (Jaeger's log: {log.name})")
    return jaeger


def _schema_registry(
    env: dict[str, str], *, wanted: bool, logs: Path, services: contextlib.ExitStack
) -> None:
    """The registry of LLM_SCHEMA_REGISTRY_URL, said; else, if ``wanted``, a local one,
    stopped with the stack."""
    if env.get("LLM_SCHEMA_REGISTRY_URL"):
        _say(f"using the Schema Registry at {env['LLM_SCHEMA_REGISTRY_URL']}")
        return
    if not wanted:
        return
    _say("starting a Schema Registry (Apicurio; first run: Maven fetches it)...")
    registry = services.enter_context(LocalRegistry(log=logs / "registry.log"))
    env["LLM_SCHEMA_REGISTRY_URL"] = registry.url
    _say(f"Schema Registry ready at {env['LLM_SCHEMA_REGISTRY_URL']}")


def _instructions(web: str, admin_note: str, registry: str | None) -> None:
    _say(f"dashboard:      {web}/   ({admin_note})")
    _say(f"JSON API:       {web}/docs, {web}/openapi.json, {web}/metrics")
    _say("publish jobs:   .venv/bin/llm-streams produce examples/jobs.jsonl")
    if registry is not None:
        _say(f"framed jobs:    LLM_SCHEMA_REGISTRY_URL={registry} .venv/bin/llm-streams produce …")
    _say("watch results:  .venv/bin/llm-streams tail --limit 20")
    _say("one job:        .venv/bin/llm-streams job ex-001   (or the dashboard's search box)")
    _say("dead letters:   .venv/bin/llm-streams tail --topic jobs.dead-letter --from-beginning")
    _say("Ctrl-C stops everything.")


def _ended(worker: subprocess.Popen[bytes], *, stopping: bool, logs: Path, verbose: bool) -> int:
    """The exit code of ``up``: 0 when asked to stop, else the worker's, with the end of its
    log when the terminal did not show it."""
    if stopping:
        return 0
    if not verbose:
        tail = (logs / "worker.log").read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
        _say("the worker stopped; the end of its log:\n" + "\n".join(tail))
    return worker.returncode or 1


def _local_model(
    env: dict[str, str], *, wanted: bool, logs: Path, services: contextlib.ExitStack
) -> None:
    """With ``wanted``: a llama.cpp server with a real (tiny) model, routed to first as the
    ``compatible`` provider, the rest of the chain behind it."""
    if not wanted:
        return
    _say("starting a real model: llama.cpp (xllamacpp) on loopback (first run: pip installs it)")
    model = services.enter_context(LocalModel(log=logs / "model.log"))
    env["COMPATIBLE_BASE_URL"], env["COMPATIBLE_MODEL"] = model.url, MODEL_NAME
    chain = [p for p in load_settings().llm_provider_chain if p != "compatible"]
    env["LLM_PROVIDER_CHAIN"] = ",".join(["compatible", *chain])
    gguf = env.get("LLM_LOCAL_GGUF") or "SmolLM2-135M-Instruct: tiny (135M), its answers are poor"
    _say(f"model ready at {model.url} ({gguf}); LLM_LOCAL_GGUF=PATH serves a better one")


def run_stack(
    *,
    data_dir: Path,
    verbose: bool = False,
    traces: bool = False,
    schema_registry: bool = False,
    local_model: bool = False,
) -> int:
    env = dict(os.environ)
    logs = data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    started = time.monotonic()
    with contextlib.ExitStack() as services:  # stopped after the children, in reverse
        try:
            load_settings()  # fail fast, before anything starts
            _broker(env, data_dir=data_dir, services=services)
            _schema_registry(env, wanted=schema_registry, logs=logs, services=services)
            _local_model(env, wanted=local_model, logs=logs, services=services)
            os.environ.update(env)  # the chain may have grown: the settings read it from here
            settings = load_settings()
            children += _simulator(env, settings.llm_provider_chain, logs=logs)
            if (jaeger := trace_destination(env, wanted=traces, logs=logs)) is not None:
                children.append(jaeger)
            admin_note = _admin_token(env, data_dir)
            if not verbose:
                _say(f"starting the worker; full logs in {logs}/ (--verbose shows them here)")
            worker = _start_worker(env, logs=logs, verbose=verbose)
            children.append(worker)
            web = f"http://{settings.llm_service_host}:{settings.llm_service_port}"
            if not wait_until_consuming(f"{web}/health", worker, stopping=lambda: stopping):
                return _ended(worker, stopping=stopping, logs=logs, verbose=verbose)
            _say(f"worker ready in {time.monotonic() - started:.1f}s")
            _instructions(web, admin_note, env.get("LLM_SCHEMA_REGISTRY_URL"))
            show_status(
                web,
                running=lambda: not stopping and worker.poll() is None,
                live=sys.stdout.isatty() and not verbose,
                out=sys.stdout,
            )
            return _ended(worker, stopping=stopping, logs=logs, verbose=verbose)
        finally:
            for child in reversed(children):  # worker first: it drains before the broker goes
                with contextlib.suppress(ProcessLookupError):
                    child.send_signal(signal.SIGTERM)
                try:
                    child.wait(60)
                except subprocess.TimeoutExpired:
                    child.kill()
            _say("stopped")


def _broker(env: dict[str, str], *, data_dir: Path, services: contextlib.ExitStack) -> None:
    """KAFKA_BOOTSTRAP_SERVERS's broker, said; else a local one (on 9092 if it is free)."""
    if env.get("KAFKA_BOOTSTRAP_SERVERS"):
        _say(f"using the broker at {env['KAFKA_BOOTSTRAP_SERVERS']}")
        return
    port = 9092 if port_is_free(9092) else None
    kafka = LocalKafka(data_dir=data_dir / "kafka", port=port)
    _say("starting a local Kafka broker (first run: Maven fetches the jars)...")
    env["KAFKA_BOOTSTRAP_SERVERS"] = services.enter_context(kafka).bootstrap_servers
    _say(f"Kafka ready at {env['KAFKA_BOOTSTRAP_SERVERS']} (data in {kafka.data_dir})")
    _say(f"the broker's log: {kafka.output_path}")


def _simulator(
    env: dict[str, str], chain: Sequence[str], *, logs: Path
) -> list[subprocess.Popen[bytes]]:
    """The simulator for every provider of the chain without a real endpoint, said."""
    simulated = [p for p in chain if not is_real(p, env)]
    real = [p for p in chain if p not in simulated]
    if real:
        _say(f"real endpoints for {', '.join(real)} (keys or addresses in the environment)")
    if not simulated:
        return []
    simulator, urls = _start_simulator(env, (logs / "simulator.log").open("ab"))
    for provider in simulated:
        spec = SPECS[provider]
        env[spec.url_variable] = urls[spec.url_variable]
        env[spec.key_variable] = DEFAULT_API_KEY
    where = urls[SPECS[simulated[0]].url_variable].split("/")[2]
    _say(f"simulating {', '.join(simulated)} at http://{where} (faults: /_sim/faults)")
    return [simulator]
