"""How every Kafka client authenticates and encrypts, from one ``KafkaSecurity`` value: the
keyword arguments of aiokafka's clients, and the credentials object Faust takes for its own.

Both come from ``security_options``, so the worker's consumer and producer and every other
client of this service (CLIs, readers, the Python client, benchmarks) connect the same way.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from pathlib import Path
from typing import Any

import faust
from aiokafka.abc import AbstractTokenProvider

from streams.config.slices import KafkaCluster, KafkaSecurity
from streams.errors import ConfigurationError

__all__ = ["MskIamToken", "TokenFile", "client_options", "faust_credentials", "security_options"]

# A token from AWS's signer lives 15 minutes; a fresh one is made this long before.
MSK_TOKEN_MARGIN_S = 60.0


def client_options(cluster: KafkaCluster) -> dict[str, Any]:
    """The keyword arguments that point an aiokafka client at ``cluster``."""
    return {"bootstrap_servers": cluster.bootstrap_servers, **security_options(cluster.security)}


@functools.cache
def security_options(security: KafkaSecurity) -> dict[str, Any]:
    """aiokafka's security keyword arguments (made once per value: one TLS context and one
    token provider for every client of the process)."""
    options: dict[str, Any] = {"security_protocol": security.protocol}
    if security.tls:
        options["ssl_context"] = _tls_context(security)
    mechanism = security.mechanism
    if mechanism is None:
        return options
    if mechanism in ("OAUTHBEARER", "AWS_MSK_IAM"):
        options["sasl_mechanism"] = "OAUTHBEARER"
        options["sasl_oauth_token_provider"] = _token_provider(security)
        return options
    # The settings refuse a password mechanism without both.
    assert security.username is not None
    assert security.password is not None
    options["sasl_mechanism"] = mechanism
    options["sasl_plain_username"] = security.username
    options["sasl_plain_password"] = security.password.get_secret_value()
    return options


def faust_credentials(security: KafkaSecurity) -> Any:
    """Faust's ``broker_credentials`` for the same connection (None for plaintext)."""
    options = security_options(security)
    context = options.get("ssl_context")
    if "sasl_oauth_token_provider" in options:
        return faust.OAuthCredentials(
            oauth_cb=options["sasl_oauth_token_provider"], ssl_context=context
        )
    if "sasl_mechanism" in options:
        return faust.SASLCredentials(
            username=options["sasl_plain_username"],
            password=options["sasl_plain_password"],
            mechanism=options["sasl_mechanism"],
            ssl_context=context,
        )
    return faust.SSLCredentials(context) if context is not None else None


def _tls_context(security: KafkaSecurity) -> ssl.SSLContext:
    """The server verified against ``cafile`` (or the system's CAs), its name checked; the
    client's own certificate for mTLS. A file that cannot be used is named, its password
    never."""
    try:
        context = ssl.create_default_context(
            cafile=str(security.cafile) if security.cafile else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise ConfigurationError(
            f"KAFKA_SSL_CAFILE {security.cafile}: not a PEM CA certificate ({_reason(exc)})"
        ) from None
    if security.certfile is not None:
        password = security.key_password.get_secret_value() if security.key_password else None
        try:
            context.load_cert_chain(
                str(security.certfile),
                str(security.keyfile) if security.keyfile else None,
                password=password,
            )
        except (ssl.SSLError, OSError) as exc:
            raise ConfigurationError(
                f"KAFKA_SSL_CERTFILE {security.certfile}"
                + (f" with KAFKA_SSL_KEYFILE {security.keyfile}" if security.keyfile else "")
                + f": the certificate and its key cannot be loaded ({_reason(exc)}; an "
                "encrypted key needs KAFKA_SSL_KEY_PASSWORD)"
            ) from None
    return context


def _reason(exc: BaseException) -> str:
    return getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__


def _token_provider(security: KafkaSecurity) -> AbstractTokenProvider:
    if security.mechanism == "AWS_MSK_IAM":
        assert security.aws_region is not None  # settings checked
        return MskIamToken(region=security.aws_region)
    assert security.oauth_token_file is not None  # settings checked
    return TokenFile(security.oauth_token_file)


class TokenFile(AbstractTokenProvider):  # type: ignore[misc]
    """An OAuth token that something else keeps fresh in a file (a Kubernetes projected
    service-account token, a sidecar): read again whenever the file changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._read: tuple[float, str] | None = None

    async def token(self) -> str:
        try:
            changed = self.path.stat().st_mtime
            if self._read is None or self._read[0] != changed:
                self._read = (changed, self.path.read_text().strip())
        except OSError as exc:
            raise ConfigurationError(
                f"KAFKA_SASL_OAUTH_TOKEN_FILE {self.path}: cannot be read ({_reason(exc)})"
            ) from None
        if not self._read[1]:
            raise ConfigurationError(f"KAFKA_SASL_OAUTH_TOKEN_FILE {self.path} is empty")
        return self._read[1]


class MskIamToken(AbstractTokenProvider):  # type: ignore[misc]
    """AWS MSK IAM: a token signed with the AWS credentials the environment gives (botocore's
    usual chain), by AWS's own signer (the optional ``msk`` extra), made again shortly
    before it expires."""

    def __init__(self, *, region: str) -> None:
        self.region = region
        self._token: tuple[float, str] | None = None  # (expires at, monotonic; token)

    async def token(self) -> str:
        if self._token is None or time.monotonic() >= self._token[0]:
            try:
                from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
            except ImportError:
                raise ConfigurationError(
                    "KAFKA_SASL_MECHANISM=AWS_MSK_IAM needs AWS's signer: "
                    "pip install 'llm-provider-streams[msk]'"
                ) from None
            # The signer is synchronous (botocore): off the event loop.
            token, expiry_ms = await asyncio.to_thread(
                MSKAuthTokenProvider.generate_auth_token, self.region
            )
            lifetime_s = expiry_ms / 1000 - time.time()
            self._token = (time.monotonic() + lifetime_s - MSK_TOKEN_MARGIN_S, token)
        return self._token[1]
