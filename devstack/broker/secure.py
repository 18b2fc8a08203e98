"""What a local cluster with a SASL_SSL listener needs: a CA and the brokers' certificate, the
SCRAM users, and the service's ACLs, exactly the ones the README lists.

The certificate authority is made for one data directory and kept there; every client trusts
it through ``KAFKA_SSL_CAFILE``. Passwords are random per data directory, so a test that looks
for a leaked password looks for one nobody could guess.
"""

from __future__ import annotations

import datetime
import ipaddress
import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "ADMIN",
    "GUEST",
    "MECHANISM",
    "SERVICE",
    "SERVICE_APP_ID",
    "Certificates",
    "grant_service_acls",
    "make_certificates",
    "new_passwords",
    "service_acls",
]

MECHANISM = "SCRAM-SHA-512"
ADMIN = "admin"  # the brokers' own principal, a super user
SERVICE = "llm"  # the service's principal: the README's ACLs and nothing more
GUEST = "guest"  # authenticated, and allowed nothing: how a missing ACL looks
SERVICE_APP_ID = "llm-enricher"  # LLM_APP_ID's default: the prefix the ACLs name by default
VALID_DAYS = 365


@dataclass(frozen=True)
class Certificates:
    ca: Path  # what clients trust (KAFKA_SSL_CAFILE)
    broker: Path  # the brokers' chain and PKCS#8 key in one PEM file, as Kafka reads it


def new_passwords() -> dict[str, str]:
    return {user: secrets.token_urlsafe(18) for user in (ADMIN, SERVICE, GUEST)}


def make_certificates(directory: Path) -> Certificates:
    """A CA and a certificate for the brokers on loopback (``localhost`` and ``127.0.0.1``),
    made once per directory."""
    made = Certificates(ca=directory / "ca.pem", broker=directory / "broker.pem")
    if made.ca.exists() and made.broker.exists():
        return made
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-streams local CA")])
    ca = (
        _valid(x509.CertificateBuilder(), now)
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _usage(key_cert_sign=True, crl_sign=True, digital_signature=False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    broker = (
        _valid(x509.CertificateBuilder(), now)
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        # Clients check the name they connected to: every name a listener is advertised as.
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            _usage(key_cert_sign=False, crl_sign=False, digital_signature=True), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    made.ca.write_bytes(ca.public_bytes(pem))
    made.broker.write_bytes(
        broker.public_bytes(pem)
        + key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    made.broker.chmod(0o600)
    return made


def _valid(builder: x509.CertificateBuilder, now: datetime.datetime) -> x509.CertificateBuilder:
    return (
        builder.serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
    )


def _usage(*, key_cert_sign: bool, crl_sign: bool, digital_signature: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=digital_signature,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def service_acls(app_id: str, principal: str = SERVICE) -> list[list[str]]:
    """The arguments of one ``kafka-acls.sh --add`` per resource type: all a worker, the CLI
    and the Python client need (topics named ``jobs.*``, ``llm.*`` or after the app id; the
    app's consumer groups and the stats aggregator's transactional ids, all named after it)."""
    allow = [
        "--add",
        "--allow-principal",
        f"User:{principal}",
        "--resource-pattern-type",
        "prefixed",
    ]
    topics = ["--topic", "jobs.", "--topic", "llm.", "--topic", app_id]
    return [
        [*allow, *_operations("Read", "Write", "Describe", "Create"), *topics],
        [*allow, *_operations("Read", "Describe"), "--group", app_id],
        [*allow, *_operations("Write", "Describe"), "--transactional-id", app_id],
    ]


def _operations(*names: str) -> list[str]:
    return [part for name in names for part in ("--operation", name)]


def grant_service_acls(java: list[str], *, bootstrap: str, admin_config: Path, app_id: str) -> None:
    """Give the service's principal its ACLs, with Kafka's own AclCommand as the admin."""
    for arguments in service_acls(app_id):
        result = subprocess.run(
            [
                *java,
                "org.apache.kafka.tools.AclCommand",
                "--bootstrap-server",
                bootstrap,
                "--command-config",
                str(admin_config),
                *arguments,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"kafka-acls {' '.join(arguments)} failed:\n{result.stdout}{result.stderr}"
            )
