"""What a worker learns of the cluster before it joins the group, and what it refuses.

aiokafka says why a connection failed only in its log, once per attempt, and goes on trying:
a wrong password, an untrusted certificate or a listener that speaks another protocol would
be a loop of ERROR lines and a hang. Here one connection is made by hand first, and its failure
is one ``ClusterRefused`` line that names the cause. Then the cluster's brokers give the
replication of the topics this service creates (``LLM_TOPIC_REPLICATION_FACTOR``, or the
smaller of 3 and the brokers); the topics it needs are made now, replicated so (a missing ACL
is named here, not found by a consumer later); an existing topic with fewer replicas is a
warning (the service never alters a topic it did not create); and the consumer group must be
one the principal may describe.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.conn import create_conn
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
    UnsupportedSaslMechanismError,
)

from streams.config.slices import KafkaCluster, KafkaSecurity
from streams.errors import ClusterRefused
from streams.kafka.admin import TopicSpec, create_topics
from streams.kafka.clients import admin
from streams.kafka.security import security_options

__all__ = ["ClusterFacts", "inspect_cluster", "prepare_topics", "reach"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 15.0
COORDINATOR_WAIT_S = 30.0


@dataclass(frozen=True, kw_only=True)
class ClusterFacts:
    """What start-up found: the brokers up, and the replication the topics it makes get."""

    brokers: int
    replication_factor: int
    min_insync_replicas: int


async def inspect_cluster(cluster: KafkaCluster) -> ClusterFacts:
    """Reach and authenticate; the brokers up and the replication new topics get."""
    await reach(cluster)
    async with admin(cluster) as client:
        brokers = len((await client.describe_cluster())["brokers"])
    factor, min_insync = cluster.replication.for_brokers(brokers)
    if factor > brokers:
        raise ClusterRefused(
            f"LLM_TOPIC_REPLICATION_FACTOR={factor}, but the cluster has {brokers} "
            f"broker{'s' if brokers != 1 else ''} up"
        )
    if min_insync > factor:
        raise ClusterRefused(
            f"LLM_TOPIC_MIN_INSYNC_REPLICAS={min_insync} cannot be met by {factor} replicas: "
            "no write would ever be acknowledged"
        )
    return ClusterFacts(brokers=brokers, replication_factor=factor, min_insync_replicas=min_insync)


async def prepare_topics(
    cluster: KafkaCluster, facts: ClusterFacts, *, topics: Sequence[TopicSpec], group: str
) -> None:
    """Create the missing ``topics``, check the existing ones, and that ``group`` may be used;
    ClusterRefused with the cause otherwise."""
    async with admin(cluster) as client:
        existing = set(await client.list_topics())
        present = {spec.name: spec for spec in topics if spec.name in existing}
        for described in await client.describe_topics(list(present)) if present else []:
            _check_existing(described, present[described["topic"]], facts.replication_factor)
        await create_topics(
            client,
            [spec for spec in topics if spec.name not in existing],
            replication=(facts.replication_factor, facts.min_insync_replicas),
        )
        await _check_group(client, group)


async def _check_group(client: Any, group: str) -> None:
    """The principal may describe ``group`` (a fresh cluster elects the coordinator of its
    groups in its first seconds: waited for)."""
    async with asyncio.timeout(COORDINATOR_WAIT_S):
        while True:
            try:
                await client.describe_consumer_groups([group])
                return
            except GroupAuthorizationFailedError:
                raise ClusterRefused(
                    f"not authorized to use consumer group {group}: the principal needs Read "
                    "and Describe on groups starting with the app id (LLM_APP_ID)"
                ) from None
            except KafkaError as exc:
                if not exc.retriable:
                    raise
            await asyncio.sleep(0.2)


def _check_existing(described: dict[str, Any], spec: TopicSpec, factor: int) -> None:
    name, code = described["topic"], described["error_code"]
    if code == TopicAuthorizationFailedError.errno:
        raise ClusterRefused(
            f"not authorized to describe topic {name}: the principal needs Describe, Read and "
            "Write on it"
        )
    partitions = described["partitions"]
    if len(partitions) != spec.partitions:
        # Faust would fail later, per record.
        raise ClusterRefused(
            f"topic {name} has {len(partitions)} partitions, needs {spec.partitions} (delete "
            "the topic, or name a new one in its LLM_TOPIC_* setting)"
        )
    replicas = min(len(p["replicas"]) for p in partitions)
    if replicas < factor:
        log.warning(
            "topic %s has %d replica%s, fewer than the %d its settings give new topics: the "
            "loss of a broker can lose its records (the service does not alter topics it did "
            "not create)",
            name,
            replicas,
            "" if replicas == 1 else "s",
            factor,
        )


async def reach(cluster: KafkaCluster) -> None:
    """One connection to a bootstrap server, authenticated as the clients will be; the first
    failure's cause when none can be made."""
    options = security_options(cluster.security)
    causes = []
    for address in cluster.bootstrap_servers.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                connection = await create_conn(host, int(port), **options)
        except (KafkaError, OSError, TimeoutError, ssl.SSLError) as exc:
            causes.append(_cause(exc, address=address.strip(), security=cluster.security))
            continue
        connection.close()
        return
    raise ClusterRefused(causes[0])


def _cause(exc: BaseException, *, address: str, security: KafkaSecurity) -> str:
    """Why a connection to ``address`` failed, and which setting to look at."""
    protocol = f"KAFKA_SECURITY_PROTOCOL={security.protocol}"
    if isinstance(exc, SaslAuthenticationFailed):
        who = (
            f"user {security.username!r}"
            if security.username
            else "the OAuth token (expired, or for another cluster?)"
        )
        return (
            f"authentication failed at {address}: the cluster refused {who} with "
            f"{security.mechanism} (KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)"
        )
    if isinstance(exc, UnsupportedSaslMechanismError):
        return f"the cluster at {address} does not accept KAFKA_SASL_MECHANISM={security.mechanism}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the broker's TLS certificate at {address} is not trusted ({exc.verify_message}): "
            "KAFKA_SSL_CAFILE names the CA that signed it"
        )
    if isinstance(exc, ssl.SSLError):
        return f"TLS with {address} failed ({exc.reason}): does the listener use TLS? ({protocol})"
    if isinstance(exc, KafkaConnectionError):
        return (
            f"the broker at {address} closed the connection during the handshake: {protocol} "
            "does not match its listener (SSL, SASL_SSL?)"
        )
    if isinstance(exc, TimeoutError):
        return (
            f"no answer from {address} within {CONNECT_TIMEOUT_S:.0f}s ({protocol}: a TLS "
            "listener spoken to in plaintext, or the other way round, waits like this)"
        )
    if isinstance(exc, OSError):
        return f"no broker answers at {address} ({exc.strerror or type(exc).__name__})"
    return f"cannot connect to {address}: {type(exc).__name__}"
