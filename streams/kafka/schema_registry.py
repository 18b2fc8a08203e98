"""The topics' contracts in a Confluent-compatible Schema Registry.

With ``LLM_SCHEMA_REGISTRY_URL`` the worker registers each data topic's JSON Schema under
``<topic>-value`` at start (setting the subject's compatibility to BACKWARD where the
operator set none) and refuses to start when the registry refuses one; the records it
writes are then framed with the ids it got (``streams.kafka.topics``).

confluent-kafka's ``SchemaRegistryClient`` speaks to the registry (and caches what it
fetched).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from streams.config.slices import RegistryConfig
from streams.errors import ConfigurationError
from streams.kafka.topics import Topic
from streams.schemas import contract, map_schema

# The client speaks HTTP with httpx2 where it is installed (it comes with confluent-kafka),
# else httpx: its transport errors are that library's.
try:
    from httpx2 import HTTPError as ClientHTTPError
except ImportError:  # pragma: no cover
    from httpx import HTTPError as ClientHTTPError  # type: ignore[assignment]

__all__ = [
    "Registry",
    "describe_change",
    "for_registry",
    "registered_contract",
    "subject_of",
    "topic_contracts",
]

# No answer within this is "unreachable" (the client's own default is to wait forever).
TIMEOUT_S = 10


def topic_contracts(topics: Iterable[Topic[Any]]) -> dict[str, dict[str, Any]]:
    """The schema of each of the topics whose records other programs read or write."""
    return {t.name: registered_contract(t.contract) for t in topics if t.contract is not None}


def registered_contract(name: str) -> dict[str, Any]:
    """A message's published schema as registries check it (``for_registry``)."""
    return for_registry(contract(name))


def for_registry(published: dict[str, Any]) -> dict[str, Any]:
    """A published contract as registries check it: the same schema with its ``$defs``
    written in place and declared as draft-07, which it also is. Apicurio's compatibility
    check resolves no ``$ref`` into ``$defs`` (it answers 500 "Unresolved JSON Schema
    reference") and knows no draft newer than 7 ("could not determine version")."""
    draft_07 = published | {"$schema": "http://json-schema.org/draft-07/schema#"}
    return map_schema(draft_07, inline_refs=True)


def subject_of(topic: str) -> str:
    """The subject of a topic's values (Confluent's TopicNameStrategy)."""
    return f"{topic}-value"


class Registry:
    """The registry's Confluent API, for registering, checking and looking schemas up."""

    def __init__(self, config: RegistryConfig) -> None:
        self.url = _without_credentials(config.url)  # what messages say
        conf: dict[str, Any] = {"url": config.url, "timeout": TIMEOUT_S}
        if config.basic_auth is not None:
            conf["basic.auth.user.info"] = config.basic_auth.get_secret_value()
        self._conf = conf

    @cached_property
    def _client(self) -> SchemaRegistryClient:
        # new_client: a "mock://" URL gives the client's in-process registry (unit tests)
        return SchemaRegistryClient.new_client(self._conf)

    def register(self, schemas: Mapping[str, dict[str, Any]]) -> dict[str, int]:
        """Register each topic's schema (``{topic: schema}``); the ids, by topic.
        ConfigurationError naming the subject and the change when the registry refuses
        one, or when it cannot be reached."""
        ids = {}
        for topic, schema in schemas.items():
            subject = subject_of(topic)
            with self._said(subject):
                self._compatibility(subject)
                try:
                    ids[topic] = self._client.register_schema(subject, _schema(schema))
                except SchemaRegistryError as exc:
                    if exc.http_status_code != 409:
                        raise
                    change = self._change(subject, schema)
                    raise ConfigurationError(
                        f"the Schema Registry at {self.url} refuses the new schema of {subject} "
                        f"({exc.error_message}): {change}"
                    ) from None
        return ids

    def check(self, schemas: Mapping[str, dict[str, Any]]) -> dict[str, str | None]:
        """Per subject: None when the schema is compatible with what is registered (or
        nothing is), else what changed."""
        verdicts: dict[str, str | None] = {}
        for topic, schema in schemas.items():
            subject = subject_of(topic)
            with self._said(subject):
                known = subject in self._client.get_subjects()
                ok = not known or self._client.test_compatibility(subject, _schema(schema))
                verdicts[subject] = None if ok else self._change(subject, schema)
        return verdicts

    def upgrade(self, schemas: Mapping[str, dict[str, Any]]) -> list[str]:
        """Register a new major version of a contract (its ``version`` above the registered
        one's), which no compatibility level but NONE admits: the subject is set to NONE for
        that one registration and given its level back. The subjects so upgraded; a schema of
        the same version goes through ``register``'s check."""
        upgraded = []
        for topic, schema in schemas.items():
            subject = subject_of(topic)
            with self._said(subject):
                latest = self._latest(subject)
                if latest is None or latest.get("version", 1) >= schema.get("version", 1):
                    continue
                level = self._compatibility(subject)
                self._client.set_compatibility(subject, "NONE")
                try:
                    self._client.register_schema(subject, _schema(schema))
                finally:
                    self._client.set_compatibility(subject, level)
            upgraded.append(subject)
        self.register(schemas)
        return upgraded

    def _latest(self, subject: str) -> dict[str, Any] | None:
        """The subject's latest schema; None when it has none."""
        try:
            found = self._client.get_latest_version(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise
        latest: dict[str, Any] = json.loads(found.schema.schema_str or "{}")
        return latest

    def schema(self, schema_id: int) -> dict[str, Any] | None:
        """The schema registered under ``schema_id``; None when the registry has none."""
        try:
            found = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            if exc.http_status_code == 404:
                return None
            raise
        loaded: dict[str, Any] = json.loads(found.schema_str or "{}")
        return loaded

    def _compatibility(self, subject: str) -> str:
        """The subject's level: BACKWARD, set now, unless the operator set one."""
        try:
            level: str = self._client.get_compatibility(subject)
        except SchemaRegistryError as exc:
            if exc.http_status_code != 404:
                raise
            self._client.set_compatibility(subject, "BACKWARD")
            return "BACKWARD"
        return level

    def _change(self, subject: str, schema: dict[str, Any]) -> str:
        return describe_change(self._latest(subject) or {}, schema)

    @contextlib.contextmanager
    def _said(self, subject: str) -> Iterator[None]:
        """Any failure to talk to the registry as a ConfigurationError saying where, what
        for and what happened."""
        try:
            yield
        except SchemaRegistryError as exc:
            raise ConfigurationError(
                f"the Schema Registry at {self.url} answered {exc.http_status_code} for "
                f"{subject}: {exc.error_message}"
            ) from None
        except (OSError, ClientHTTPError) as exc:
            raise ConfigurationError(
                f"the Schema Registry at {self.url} cannot be reached ({type(exc).__name__}: "
                f"{exc}); is it running? (LLM_SCHEMA_REGISTRY_URL)"
            ) from None


def _without_credentials(url: str) -> str:
    """A URL as it may be said: credentials written into it (user:password@) left out."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def _schema(schema: dict[str, Any]) -> Schema:
    return Schema(json.dumps(schema), "JSON")


def describe_change(registered: dict[str, Any], new: dict[str, Any]) -> str:
    """What a consumer of the registered schema would notice: a new major version of the
    contract, fields added as required, fields removed, fields whose type changed (top
    level), in words."""
    old, new_version = registered.get("version", 1), new.get("version", 1)
    if new_version > old:
        return (
            f"a new major version of the contract (version {old} to {new_version}), not "
            "backward compatible by design; once its consumers read it (the README says what "
            "changed), register it with: llm-streams schemas --upgrade-registry URL"
        )
    old_props, new_props = registered.get("properties", {}), new.get("properties", {})
    old_required, new_required = set(registered.get("required", [])), set(new.get("required", []))
    said = [f"field {name!r} is new and required" for name in sorted(new_required - old_required)]
    said += [f"field {name!r} is removed" for name in sorted(set(old_props) - set(new_props))]
    said += [
        f"field {name!r} changed type"
        for name in sorted(set(old_props) & set(new_props))
        if old_props[name].get("type") != new_props[name].get("type")
    ]
    return "; ".join(said) or "the change is not backward compatible"
