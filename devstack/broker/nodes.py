"""A local KRaft Apache Kafka from the official jars: one broker (``make run``, the test
session) or a cluster of combined broker-and-controller nodes (``llm-streams broker --nodes
3``), plaintext or with a SASL_SSL listener (SCRAM-SHA-512, a CA of its own, the
StandardAuthorizer, the service's principal given exactly the README's ACLs).

Each data directory keeps its cluster id, ports and passwords in ``state.json`` so a restart
finds its data again (KRaft formats a data directory for one cluster id, and refuses it under
another). Single nodes can be killed, stopped and started again, for the fault tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from devstack.broker import secure
from devstack.broker.launcher import (
    HOST,
    LOG4J2_PROPERTIES,
    BrokerError,
    LocalProcess,
    die_with_parent,
    ensure_jars,
    free_port,
    new_cluster_id,
    port_is_free,
    stop_group,
)

__all__ = ["LocalKafka"]

PORTS = ("client", "controller", "internal")
ADMIN_JAAS = "org.apache.kafka.common.security.scram.ScramLoginModule required"


class LocalKafka(LocalProcess):
    """Broker processes on loopback. Use as a context manager, or start()/stop()."""

    def __init__(
        self,
        *,
        data_dir: Path,
        port: int | None = None,
        nodes: int = 1,
        sasl: bool = False,
        app_id: str = secure.SERVICE_APP_ID,
        heap_mb: int = 512,
    ) -> None:
        if nodes < 1:
            raise ValueError("a cluster has at least one node")
        self.data_dir = data_dir.resolve()
        self._requested_port = port
        self.nodes = nodes
        self.sasl = sasl
        self.app_id = app_id  # the prefix of the service's ACLs
        self.heap_mb = heap_mb
        self._state: dict[str, Any] = {}
        self._processes: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, self.nodes + 1))

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(f"{HOST}:{self._ports(node)['client']}" for node in self.node_ids)

    @property
    def output_path(self) -> Path:
        """The first node's log (the only one's, for a single broker)."""
        return self._output(1)

    def client_env(self, user: str = secure.SERVICE) -> dict[str, str]:
        """The settings a worker (or any client of the service) needs to connect as ``user``."""
        env = {"KAFKA_BOOTSTRAP_SERVERS": self.bootstrap_servers}
        if self.sasl:
            env |= {
                "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "KAFKA_SASL_MECHANISM": secure.MECHANISM,
                "KAFKA_SASL_USERNAME": user,
                "KAFKA_SASL_PASSWORD": self._state["passwords"][user],
                "KAFKA_SSL_CAFILE": str(self._certificates().ca),
            }
        return env

    # --- the whole cluster ------------------------------------------------------------

    def start(self, *, timeout_s: float = 120.0) -> str:
        lib = ensure_jars()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):
            self._state = self._load_state()
            for node in self.node_ids:
                self._format(lib, node)
            for node in self.node_ids:
                self._launch(lib, node)
            try:
                for node in self.node_ids:
                    self._wait_ready(node, timeout_s)
                break
            except BrokerError:
                self.stop()
                # A picked port taken before the JVM bound it: pick again.
                if self._requested_port is None and attempt < 2 and self._a_port_is_taken():
                    continue
                raise
        if self.sasl and self.app_id not in self._state.setdefault("acls", []):
            self._grant(lib)
        return self.bootstrap_servers

    def terminate(self) -> None:
        """Ask every node to shut down (a controlled shutdown); returns at once."""
        for process in self._processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Shut every node down and wait for them; SIGKILL after ``timeout_s``."""
        self.terminate()
        for node in list(self._processes):
            self.stop_node(node, timeout_s=timeout_s)

    def wait(self) -> int:
        """Block until every node has exited; the first non-zero exit code, or 0."""
        codes = [process.wait() for process in self._processes.values()]
        return next((code for code in codes if code), 0)

    # --- one node, for the fault tests ------------------------------------------------

    def kill(self, node: int) -> None:
        """SIGKILL one node: a crash, no controlled shutdown."""
        process = self._processes.pop(node)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_node(self, node: int, *, timeout_s: float = 60.0) -> None:
        """SIGTERM one node (its leaderships move first) and wait for it to exit."""
        process = self._processes.pop(node, None)
        if process is not None:
            stop_group(process, timeout_s=timeout_s)

    def start_node(self, node: int, *, timeout_s: float = 120.0) -> None:
        """Start a stopped or killed node again, on its ports and data; returns once it
        accepts connections."""
        self.launch_node(node)
        self.wait_for_node(node, timeout_s=timeout_s)

    def launch_node(self, node: int) -> None:
        """``start_node`` without the wait: call it from the main thread (a node dies with
        the thread that started it), and wait for it anywhere."""
        self._launch(ensure_jars(), node)

    def wait_for_node(self, node: int, *, timeout_s: float = 120.0) -> None:
        """Return once a launched node accepts connections."""
        self._wait_ready(node, timeout_s)

    def pid(self, node: int) -> int | None:
        process = self._processes.get(node)
        return process.pid if process is not None and process.poll() is None else None

    # --- state, configuration, processes ----------------------------------------------

    def _load_state(self) -> dict[str, Any]:
        """Cluster id, ports and passwords, kept across restarts; ports change only when
        taken."""
        path = self.data_dir / "state.json"
        state: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        if "port" in state:  # a single broker's state, as written before clusters
            state["nodes"] = [
                {"client": state.pop("port"), "controller": state.pop("controller_port")}
            ]
        state.setdefault("cluster_id", new_cluster_id())
        if self.sasl:
            state.setdefault("passwords", secure.new_passwords())
        kept: list[dict[str, int]] = state.get("nodes", [])
        taken: set[int] = set()
        nodes = []
        for index in range(self.nodes):
            ports = kept[index] if index < len(kept) else {}
            chosen = {}
            for name in PORTS:
                wanted = (
                    self._requested_port + index
                    if name == "client" and self._requested_port
                    else None
                )
                port = wanted or ports.get(name)
                if port is None or port in taken or (wanted is None and not port_is_free(port)):
                    port = free_port()
                    while port in taken:
                        port = free_port()
                chosen[name] = port
                taken.add(port)
            nodes.append(chosen)
        state["nodes"] = nodes
        path.write_text(json.dumps(state))
        return state

    def _save_state(self) -> None:
        (self.data_dir / "state.json").write_text(json.dumps(self._state))

    def _ports(self, node: int) -> dict[str, int]:
        return dict(self._state["nodes"][node - 1])

    def _a_port_is_taken(self) -> bool:
        return any(
            not port_is_free(port) for node in self.node_ids for port in self._ports(node).values()
        )

    def _dir(self, node: int) -> Path:
        # A single broker keeps the layout it always had, so its data is found again.
        return self.data_dir if self.nodes == 1 else self.data_dir / f"node{node}"

    def _output(self, node: int) -> Path:
        return self._dir(node) / "kafka.out"

    def _certificates(self) -> secure.Certificates:
        return secure.make_certificates(self.data_dir / "certs")

    def _properties(self, node: int) -> dict[str, object]:
        ports = self._ports(node)
        replicas = min(3, self.nodes)
        min_insync = max(1, replicas - 1)
        voters = ",".join(f"{n}@{HOST}:{self._ports(n)['controller']}" for n in self.node_ids)
        properties: dict[str, object] = {
            "process.roles": "broker,controller",
            "node.id": node,
            "controller.quorum.voters": voters,
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self._dir(node) / "logs",
            "num.partitions": 1,
            "default.replication.factor": replicas,
            "min.insync.replicas": min_insync,
            "offsets.topic.replication.factor": replicas,
            "offsets.topic.num.partitions": 1,
            "transaction.state.log.replication.factor": replicas,
            "transaction.state.log.min.isr": min_insync,
            "transaction.state.log.num.partitions": 1,
            "share.coordinator.state.topic.replication.factor": replicas,
            "share.coordinator.state.topic.min.isr": min_insync,
            "group.initial.rebalance.delay.ms": 0,
            # A cluster behaves as a managed one does: topics are created on purpose.
            "auto.create.topics.enable": str(self.nodes == 1).lower(),
            "delete.topic.enable": "true",
            "num.network.threads": 2,
            "num.io.threads": 2,
            "num.recovery.threads.per.data.dir": 1,
            "log.cleaner.threads": 1,
            "log.cleaner.dedupe.buffer.size": 33554432,
        }
        if self.nodes == 1 and not self.sasl:
            return properties | {
                "listeners": f"PLAINTEXT://{HOST}:{ports['client']},CONTROLLER://{HOST}:{ports['controller']}",
                "advertised.listeners": f"PLAINTEXT://{HOST}:{ports['client']}",
                "inter.broker.listener.name": "PLAINTEXT",
                "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            }
        protocol = "SASL_SSL" if self.sasl else "PLAINTEXT"
        client, internal = (
            f"CLIENT://{HOST}:{ports['client']}",
            f"INTERNAL://{HOST}:{ports['internal']}",
        )
        properties |= {
            "listeners": f"{client},CONTROLLER://{HOST}:{ports['controller']},{internal}",
            "advertised.listeners": f"{client},{internal}",
            "inter.broker.listener.name": "INTERNAL",
            # SCRAM cannot authenticate controllers to each other: that listener stays
            # plaintext, on loopback.
            "listener.security.protocol.map": (
                f"CLIENT:{protocol},INTERNAL:{protocol},CONTROLLER:PLAINTEXT"
            ),
        }
        if not self.sasl:
            return properties
        certificates = self._certificates()
        scram = secure.MECHANISM.lower()
        return properties | {
            "sasl.enabled.mechanisms": secure.MECHANISM,
            "sasl.mechanism.inter.broker.protocol": secure.MECHANISM,
            f"listener.name.client.{scram}.sasl.jaas.config": f"{ADMIN_JAAS};",
            f"listener.name.internal.{scram}.sasl.jaas.config": self._admin_jaas(),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": certificates.broker,
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": certificates.ca,
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            # Brokers reach the controllers as ANONYMOUS over the plaintext controller listener.
            "super.users": f"User:{secure.ADMIN};User:ANONYMOUS",
            "allow.everyone.if.no.acl.found": "false",
        }

    def _write_config(self, node: int) -> Path:
        config = self._dir(node) / "config"
        config.mkdir(parents=True, exist_ok=True)
        lines = [f"{key}={value}" for key, value in self._properties(node).items()]
        (config / "server.properties").write_text("\n".join(lines) + "\n")
        (config / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        return config

    def _java(self, node: int, config: Path, heap_mb: int, lib: Path) -> list[str]:
        return [
            "java",
            f"-Xms{heap_mb}m",
            f"-Xmx{heap_mb}m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:InitiatingHeapOccupancyPercent=35",
            "-XX:+ExplicitGCInvokesConcurrent",
            "-Djava.awt.headless=true",
            f"-Dkafka.logs.dir={self._dir(node) / 'app-logs'}",
            f"-Dlog4j2.configurationFile={config / 'log4j2.properties'}",
            "-cp",
            f"{lib}/*",
        ]

    def _format(self, lib: Path, node: int) -> None:
        config = self._write_config(node)
        if (self._dir(node) / "logs" / "meta.properties").exists():
            return
        # SCRAM users exist before the brokers start: the brokers authenticate as one.
        users = [
            argument
            for user, password in self._state.get("passwords", {}).items()
            for argument in ("--add-scram", f"{secure.MECHANISM}=[name={user},password={password}]")
        ]
        result = subprocess.run(
            [
                *self._java(node, config, 256, lib),
                "kafka.tools.StorageTool",
                "format",
                "-t",
                str(self._state["cluster_id"]),
                "-c",
                str(config / "server.properties"),
                "--ignore-formatted",
                *users,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise BrokerError(
                f"formatting {self._dir(node)} failed:\n{result.stdout}{result.stderr}"
            )

    def _launch(self, lib: Path, node: int) -> None:
        config = self._write_config(node)
        # Output goes to a file: an unread pipe would block the JVM.
        with self._output(node).open("ab") as out:
            self._processes[node] = subprocess.Popen(
                [
                    *self._java(node, config, self.heap_mb, lib),
                    "kafka.Kafka",
                    str(config / "server.properties"),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def _wait_ready(self, node: int, timeout_s: float) -> None:
        # Kafka opens its listener only once the broker is unfenced and has metadata,
        # so an accepted connection means ready (SocketServer.scala).
        deadline = time.monotonic() + timeout_s
        port = self._ports(node)["client"]
        while time.monotonic() < deadline:
            process = self._processes[node]
            if process.poll() is not None:
                raise BrokerError(
                    f"Kafka node {node} exited with code {process.returncode}:\n{self._tail(node)}"
                )
            with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.5):
                return
            time.sleep(0.2)
        raise BrokerError(
            f"Kafka node {node} did not accept connections within {timeout_s:.0f}s:\n"
            + self._tail(node)
        )

    def _grant(self, lib: Path) -> None:
        """The service's ACLs, once per data directory."""
        admin_config = self.data_dir / "certs" / "admin.properties"
        admin_config.write_text(
            "\n".join(
                [
                    "security.protocol=SASL_SSL",
                    f"sasl.mechanism={secure.MECHANISM}",
                    f"sasl.jaas.config={self._admin_jaas()}",
                    "ssl.truststore.type=PEM",
                    f"ssl.truststore.location={self._certificates().ca}",
                ]
            )
            + "\n"
        )
        admin_config.chmod(0o600)
        try:
            secure.grant_service_acls(
                self._java(1, self._dir(1) / "config", 256, lib),
                bootstrap=self.bootstrap_servers,
                admin_config=admin_config,
                app_id=self.app_id,
            )
        except RuntimeError as exc:
            raise BrokerError(str(exc)) from None
        self._state["acls"].append(self.app_id)
        self._save_state()

    def _admin_jaas(self) -> str:
        password = self._state["passwords"][secure.ADMIN]
        return f'{ADMIN_JAAS} username="{secure.ADMIN}" password="{password}";'

    def _tail(self, node: int, lines: int = 20) -> str:
        try:
            text = self._output(node).read_text(errors="replace")
        except OSError:
            return "(no output)"
        return "\n".join(text.splitlines()[-lines:])
