"""A single-node KRaft Apache Kafka from the official jars on Maven Central, for machines
without Docker: the CLI's ``llm-streams broker`` and the test suite both use it.

The jars are resolved once with Maven into a cache; each data directory keeps its cluster id
and ports in ``state.json`` so a restart finds its data again (KRaft formats a data
directory for one cluster id, and refuses it under another).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Self

from streams.errors import StreamsError

KAFKA_VERSION = "4.1.1"
HOST = "127.0.0.1"
LOWEST_FREE_PORT = 10000  # above the ports of well-known and most registered services

SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@{host}:{controller_port}
listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{controller_port}
advertised.listeners=PLAINTEXT://{host}:{port}
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs={log_dir}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
"""

LOG4J2_PROPERTIES = """\
status = warn
appender.stdout.type = Console
appender.stdout.name = STDOUT
appender.stdout.layout.type = PatternLayout
appender.stdout.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.stdout.ref = STDOUT
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


class BrokerError(StreamsError):
    """The local broker could not be installed or started; the message says why."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-streams" / f"kafka-{KAFKA_VERSION}"


def ensure_jars() -> Path:
    """The directory holding the broker's jars, resolved with Maven on first use."""
    lib = cache_dir() / "lib"
    if (lib / ".complete").exists():
        return lib
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BrokerError(
                f"'{tool}' is not on PATH: the local Kafka broker needs Java 17+ and Maven "
                "(or set KAFKA_BOOTSTRAP_SERVERS to a running broker)"
            )
    lib.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=lib.parent))
    pom = resources.files("devstack.broker").joinpath("pom.xml")
    with resources.as_file(pom) as pom_path:
        result = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                "-f",
                str(pom_path),
                "dependency:copy-dependencies",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    if result.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        tail = (result.stdout + result.stderr).strip().splitlines()[-15:]
        raise BrokerError("Maven could not fetch the Kafka jars:\n" + "\n".join(tail))
    (staging / ".complete").write_text(KAFKA_VERSION)
    shutil.rmtree(lib, ignore_errors=True)
    staging.rename(lib)
    return lib


def new_cluster_id() -> str:
    """Like Kafka's Uuid.randomUuid(): URL-safe base64 of 16 random bytes, never starting
    with '-' (a command line would read it as an option)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id


def free_port(*, count: int = 1) -> int:
    """The first of ``count`` consecutive loopback ports free now. Drawn below the kernel's
    ephemeral range: a port from that range can be taken by any outgoing connection in the
    moments before its server binds it."""
    below = _ephemeral_start()
    while True:
        first = random.randrange(LOWEST_FREE_PORT, below - count)
        if all(port_is_free(first + offset) for offset in range(count)):
            return first


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # as Kafka binds: a port in TIME_WAIT after our own broker stopped is free to reuse
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def die_with_parent() -> None:
    # PR_SET_PDEATHSIG: the child (a broker, a worker) gets SIGTERM when the process that
    # started it dies, even by SIGKILL, so a killed CLI or test run leaves nothing behind. It
    # fires when the starting *thread* ends: start children from the main thread.
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


def stop_group(process: subprocess.Popen[bytes], *, timeout_s: float) -> None:
    """Stop a child started in a session of its own, and all it started: SIGTERM, then
    SIGKILL after ``timeout_s``."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


class LocalProcess(ABC):
    """A local service in a child process: started on entering, stopped on leaving."""

    @abstractmethod
    def start(self) -> str:
        """Start it, once it answers; where it answers."""

    @abstractmethod
    def stop(self) -> None:
        """Stop it and wait for it."""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class LocalKafka(LocalProcess):
    """One broker process on loopback. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        heap_mb: int = 512,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self._requested_port = port
        self.heap_mb = heap_mb
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def output_path(self) -> Path:
        return self.data_dir / "kafka.out"

    def start(self, *, timeout_s: float = 120.0) -> str:
        lib = ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            state = self._state()
            config = self._write_config(state)
            self._format(lib, config, state["cluster_id"])
            self._launch(lib, config)
            try:
                self._wait_ready(timeout_s)
                return self.bootstrap_servers
            except BrokerError:
                self.stop()
                # A picked port taken before the JVM bound it: pick again.
                if self._requested_port is None and attempt < 2 and not port_is_free(self.port):
                    (self.data_dir / "state.json").unlink(missing_ok=True)
                    continue
                raise
        raise AssertionError("unreachable")

    def terminate(self) -> None:
        """Ask the broker to shut down (a controlled shutdown); returns at once."""
        if self._process is not None and self._process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGTERM)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Shut the broker down and wait for it; SIGKILL after ``timeout_s``."""
        self.terminate()
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout_s=timeout_s)

    def wait(self) -> int:
        """Block until the broker process exits; its exit code."""
        assert self._process is not None
        return self._process.wait()

    def _state(self) -> dict[str, object]:
        """Cluster id and ports, kept across restarts; ports change only when taken."""
        path = self.data_dir / "state.json"
        state: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
        if "cluster_id" not in state:
            state["cluster_id"] = new_cluster_id()
        port = self._requested_port or state.get("port")
        if not isinstance(port, int) or (self._requested_port is None and not port_is_free(port)):
            port = free_port()
        controller = state.get("controller_port")
        if not isinstance(controller, int) or controller == port or not port_is_free(controller):
            controller = free_port()
        state |= {"port": port, "controller_port": controller}
        path.write_text(json.dumps(state))
        self.port = port
        return state

    def _write_config(self, state: dict[str, object]) -> Path:
        config = self.data_dir / "config"
        config.mkdir(exist_ok=True)
        (config / "server.properties").write_text(
            SERVER_PROPERTIES.format(
                host=HOST,
                port=state["port"],
                controller_port=state["controller_port"],
                log_dir=self.data_dir / "logs",
            )
        )
        (config / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        return config

    def _java(self, config: Path, heap_mb: int) -> list[str]:
        return [
            "java",
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self.data_dir / 'app-logs'}",
            f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}",
        ]

    def _format(self, lib: Path, config: Path, cluster_id: object) -> None:
        if (self.data_dir / "logs" / "meta.properties").exists():
            return
        result = subprocess.run(
            [
                *self._java(config, 256),
                "-cp",
                f"{lib}/*",
                "kafka.tools.StorageTool",
                "format",
                "-t",
                str(cluster_id),
                "-c",
                str(config / "server.properties"),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(f"formatting {self.data_dir} failed:\n{result.stdout}{result.stderr}")

    def _launch(self, lib: Path, config: Path) -> None:
        # Output goes to a file: an unread pipe would block the JVM.
        with self.output_path.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    *self._java(config, self.heap_mb),
                    "-cp",
                    f"{lib}/*",
                    "kafka.Kafka",
                    str(config / "server.properties"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def _wait_ready(self, timeout_s: float) -> None:
        # Kafka opens its listener only once the broker is unfenced and has metadata,
        # so an accepted connection means ready (SocketServer.scala).
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrokerError(
                    f"Kafka exited with code {self._process.returncode}:\n{self._tail()}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), 0.5):
                return
            time.sleep(0.2)
        raise BrokerError(
            f"Kafka did not accept connections within {timeout_s:.0f}s:\n{self._tail()}"
        )

    def _tail(self, lines: int = 20) -> str:
        try:
            text = self.output_path.read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
