"""One security value, the same connection for aiokafka's clients and Faust's."""

from __future__ import annotations

import base64
import dataclasses
import os
import ssl
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from cryptography.hazmat.primitives import serialization
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import SecretStr

from devstack.broker.secure import make_certificates
from streams.config.settings import load_settings
from streams.config.slices import KafkaCluster, KafkaSecurity
from streams.errors import ConfigurationError
from streams.kafka.security import (
    MskIamToken,
    TokenFile,
    client_options,
    faust_credentials,
    security_options,
)

PLAINTEXT = KafkaCluster.plaintext("a:9092,b:9092").security


def _security(**changes: object) -> KafkaSecurity:
    return dataclasses.replace(PLAINTEXT, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    made = make_certificates(tmp_path_factory.mktemp("certs"))
    return made.ca, made.broker


def test_plaintext_is_just_the_brokers() -> None:
    options = client_options(KafkaCluster.plaintext("a:9092,b:9092"))
    assert options == {"bootstrap_servers": "a:9092,b:9092", "security_protocol": "PLAINTEXT"}
    assert faust_credentials(PLAINTEXT) is None


def test_scram_over_tls_reaches_faust_exactly_as_the_other_clients(
    certificates: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _ = certificates
    for name, value in {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": "llm",
        "KAFKA_SASL_PASSWORD": "pw-sentinel-3c1a",
        "KAFKA_SSL_CAFILE": str(ca),
    }.items():
        monkeypatch.setenv(name, value)
    security = load_settings().cluster().security
    options = security_options(security)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "llm"
    context = options["ssl_context"]
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert security_options(security) is options, "one TLS context for every client"
    assert dict(credentials_to_aiokafka_auth(faust_credentials(security))) == options


def test_tls_alone_and_mtls(certificates: tuple[Path, Path]) -> None:
    ca, broker = certificates
    tls = _security(protocol="SSL", cafile=ca)
    assert dict(credentials_to_aiokafka_auth(faust_credentials(tls))) == security_options(tls)
    mtls = _security(protocol="SSL", cafile=ca, certfile=broker)  # the key in the same file
    assert security_options(mtls)["ssl_context"] is not None


def test_a_file_that_is_not_what_tls_needs_is_named_without_the_password(
    certificates: tuple[Path, Path], tmp_path: Path
) -> None:
    ca, broker = certificates
    not_pem = tmp_path / "ca.txt"
    not_pem.write_text("not a certificate")
    with pytest.raises(ConfigurationError, match=r"KAFKA_SSL_CAFILE .*ca\.txt: not a PEM CA"):
        security_options(_security(protocol="SSL", cafile=not_pem))
    # an encrypted key, opened with the wrong password
    key = serialization.load_pem_private_key(broker.read_bytes(), password=None)
    locked = tmp_path / "client.key"
    locked.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"right-one"),
        )
    )
    wrong = _security(
        protocol="SSL",
        cafile=ca,
        certfile=broker,
        keyfile=locked,
        key_password=SecretStr("wrong-sentinel-77"),
    )
    with pytest.raises(ConfigurationError, match="cannot be loaded") as refused:
        security_options(wrong)
    assert "wrong-sentinel-77" not in str(refused.value)


async def test_an_oauth_token_is_read_again_when_its_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("first-token\n")
    provider = TokenFile(path)
    assert await provider.token() == "first-token"
    path.write_text("second-token")
    os.utime(path, (1, 1))  # a new mtime, however fast the test runs
    assert await provider.token() == "second-token"
    path.write_text("")
    os.utime(path, (2, 2))
    with pytest.raises(ConfigurationError, match="is empty"):
        await provider.token()
    options = security_options(
        _security(protocol="SASL_SSL", mechanism="OAUTHBEARER", oauth_token_file=path)
    )
    assert options["sasl_mechanism"] == "OAUTHBEARER"
    assert isinstance(options["sasl_oauth_token_provider"], TokenFile)


async def test_msk_iam_signs_a_connect_token_with_aws_signer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # AWS's example credentials: the signature is made here, offline.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    provider = MskIamToken(region="eu-west-1")
    token = await provider.token()
    assert await provider.token() == token, "kept until shortly before it expires"
    url = urlparse(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    query = parse_qs(url.query)
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert "wJalrXUtnFEMI" not in token
