"""What running Apache Kafka (and the other local services) from jars needs, for machines
without Docker: the jars, resolved once with Maven into a cache; free loopback ports; child
processes that die with their parent and stop as a group. ``devstack.broker.nodes`` runs the
broker or cluster itself.
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import hashlib
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
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
    """The directory holding the broker's jars, resolved with Maven on first use (and again
    when pom.xml changes)."""
    lib = cache_dir() / "lib"
    pom = resources.files("devstack.broker").joinpath("pom.xml")
    wanted = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = lib / ".complete"
    if marker.exists() and marker.read_text() == wanted:
        return lib
    for tool in ("java", "mvn"):
        if shutil.which(tool) is None:
            raise BrokerError(
                f"'{tool}' is not on PATH: the local Kafka broker needs Java 17+ and Maven "
                "(or set KAFKA_BOOTSTRAP_SERVERS to a running broker)"
            )
    lib.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib-", dir=lib.parent))
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
    (staging / ".complete").write_text(wanted)
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
