"""What a worker finds out about the cluster before it joins the group, on the real
three-broker SASL_SSL cluster: each way of being refused is one line that names the cause."""

from __future__ import annotations

import logging
import time

import pytest
from aiokafka.admin import NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from devstack.broker import LocalKafka
from devstack.broker.secure import ADMIN, GUEST
from streams.config.settings import load_settings
from streams.config.slices import KafkaCluster
from streams.errors import ClusterRefused
from streams.kafka.admin import TopicSpec
from streams.kafka.clients import admin
from streams.kafka.preflight import inspect_cluster, prepare_topics
from tests.conftest import run_cli

pytestmark = pytest.mark.slow


def _cluster(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> KafkaCluster:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings().cluster()


async def test_the_service_principal_gets_replicated_topics(
    cluster_env: dict[str, str], kafka_cluster: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = _cluster(cluster_env, monkeypatch)
    facts = await inspect_cluster(cluster)
    assert (facts.brokers, facts.replication_factor, facts.min_insync_replicas) == (3, 3, 2)
    name = f"{cluster_env['LLM_TOPIC_RAW']}.made"
    await prepare_topics(
        cluster,
        facts,
        topics=[TopicSpec(name=name, partitions=6, compacted=True)],
        group=cluster_env["LLM_APP_ID"],
    )
    # Looked at as the admin: the service's principal may not read topic configs.
    async with admin(_cluster(kafka_cluster.client_env(ADMIN), monkeypatch)) as client:
        (described,) = await client.describe_topics([name])
        (configs,) = await client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
    assert {len(p["replicas"]) for p in described["partitions"]} == {3}
    values = {entry[0]: entry[1] for entry in configs.resources[0][4]}
    assert values["min.insync.replicas"] == "2"
    assert values["cleanup.policy"] == "compact"


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (
            {"KAFKA_SASL_PASSWORD": "wrong-sentinel-9d2e"},
            "authentication failed at 127.0.0.1:",
        ),
        (
            {"KAFKA_SASL_MECHANISM": "SCRAM-SHA-256"},
            "does not accept KAFKA_SASL_MECHANISM=SCRAM-SHA-256",
        ),
        ({"KAFKA_SSL_CAFILE": ""}, "TLS certificate at 127.0.0.1:"),
        (
            {
                "KAFKA_SECURITY_PROTOCOL": "PLAINTEXT",
                "KAFKA_SASL_MECHANISM": "",
                "KAFKA_SSL_CAFILE": "",
            },
            "closed the connection during the handshake: KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"LLM_TOPIC_REPLICATION_FACTOR": "4"},
            "LLM_TOPIC_REPLICATION_FACTOR=4, but the cluster has 3",
        ),
    ],
)
async def test_a_cluster_that_refuses_the_settings_says_why_in_one_line(
    cluster_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    says: str,
) -> None:
    for name, value in change.items():
        if not value:
            monkeypatch.delenv(name, raising=False)
    env = {k: v for k, v in (cluster_env | change).items() if v}
    began = time.monotonic()
    with pytest.raises(ClusterRefused, match=says) as refused:
        await inspect_cluster(_cluster(env, monkeypatch))
    assert "\n" not in str(refused.value)
    assert cluster_env["KAFKA_SASL_PASSWORD"] not in str(refused.value)
    assert "wrong-sentinel-9d2e" not in str(refused.value)
    assert time.monotonic() - began < 20, "no retry loop"


async def test_a_principal_without_acls_is_refused_naming_the_topic(
    cluster_env: dict[str, str], kafka_cluster: LocalKafka, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster = _cluster(cluster_env | kafka_cluster.client_env(GUEST), monkeypatch)
    facts = await inspect_cluster(cluster)  # authenticated: it is who it says
    raw = cluster_env["LLM_TOPIC_RAW"]
    with pytest.raises(ClusterRefused, match=f"not authorized to create topic {raw}"):
        await prepare_topics(
            cluster,
            facts,
            topics=[TopicSpec(name=raw, partitions=6)],
            group=cluster_env["LLM_APP_ID"],
        )


async def test_an_existing_topic_with_fewer_replicas_is_a_warning_naming_it(
    cluster_env: dict[str, str],
    kafka_cluster: LocalKafka,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cluster = _cluster(cluster_env, monkeypatch)
    name = f"{cluster_env['LLM_TOPIC_RAW']}.someone-elses"
    async with admin(cluster) as client:
        await client.create_topics([NewTopic(name, num_partitions=6, replication_factor=1)])
    facts = await inspect_cluster(cluster)
    with caplog.at_level(logging.WARNING, logger="streams.kafka.preflight"):
        await prepare_topics(
            cluster,
            facts,
            topics=[TopicSpec(name=name, partitions=6)],
            group=cluster_env["LLM_APP_ID"],
        )
    (warning,) = caplog.records
    assert f"topic {name} has 1 replica, fewer than the 3" in warning.getMessage()
    with pytest.raises(ClusterRefused, match=f"topic {name} has 6 partitions, needs 4"):
        await prepare_topics(
            cluster,
            facts,
            topics=[TopicSpec(name=name, partitions=4)],
            group=cluster_env["LLM_APP_ID"],
        )


def test_the_worker_stops_with_status_1_and_one_line_on_a_wrong_password(
    cluster_env: dict[str, str],
) -> None:
    began = time.monotonic()
    env = cluster_env | {"KAFKA_SASL_PASSWORD": "wrong-sentinel-4b7c"}
    result = run_cli("worker", env=env, timeout=60)
    assert result.returncode == 1
    said = (result.stdout + result.stderr).strip().splitlines()
    assert said == [f"Error: {said[0].removeprefix('Error: ')}"], said
    assert "authentication failed" in said[0]
    assert "wrong-sentinel-4b7c" not in result.stdout + result.stderr
    assert time.monotonic() - began < 45


def test_the_worker_stops_with_status_1_naming_what_a_principal_without_acls_lacks(
    cluster_env: dict[str, str], kafka_cluster: LocalKafka
) -> None:
    result = run_cli("worker", env=cluster_env | kafka_cluster.client_env(GUEST), timeout=60)
    assert result.returncode == 1
    (line,) = (result.stdout + result.stderr).strip().splitlines()
    assert line.startswith("Error: not authorized to create topic "), line
