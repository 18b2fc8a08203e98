"""Settings from the environment, and the clear failure of bad ones."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from streams.config.runtime import RuntimeConfig
from streams.config.settings import Settings, load_settings
from streams.errors import ConfigurationError
from streams.pricing import DEFAULT_PRICES
from tests.conftest import ROOT


def test_defaults_and_chain_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PROVIDER_CHAIN", " DeepSeek , openai ")
    settings = load_settings()
    assert settings.llm_provider_chain == ["deepseek", "openai"]
    assert settings.kafka_bootstrap_servers == "localhost:9092"


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("LLM_PROVIDER_CHAIN", "openai,nope", "LLM_PROVIDER_CHAIN"),
        ("LLM_PROVIDER_CHAIN", "openai,openai", "twice"),
        ("LLM_SERVICE_PORT", "99999", "LLM_SERVICE_PORT"),
        ("LLM_WORKER_CONCURRENCY", "lots", "LLM_WORKER_CONCURRENCY"),
        ("OPENAI_BASE_URL", "not a url", "OPENAI_BASE_URL"),
        ("LLM_PRICES", "{broken", "LLM_PRICES"),
    ],
)
def test_invalid_settings_fail_with_one_clear_message(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, says: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=says):
        load_settings()


def test_price_overrides_merge_with_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "LLM_PRICES", '{"gpt-5.4-mini": {"input": 1, "cached_input": 0.1, "output": 5}}'
    )
    prices = load_settings().llm_prices
    assert prices["gpt-5.4-mini"].input == 1
    assert prices["deepseek-v4-flash"] == DEFAULT_PRICES["deepseek-v4-flash"]


def test_keys_never_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-settings-0001")
    settings = load_settings()
    assert "sk-sentinel-settings-0001" not in repr(settings)
    assert "sk-sentinel-settings-0001" not in str(settings.provider("openai"))


def test_the_worker_refuses_to_start_on_bad_settings() -> None:
    env = os.environ | {"LLM_PROVIDER_CHAIN": "openai,bogus", "OPENAI_API_KEY": "sk-sentinel-2"}
    result = subprocess.run(
        [sys.executable, "-m", "streams", "worker"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "LLM_PROVIDER_CHAIN" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "sk-sentinel-2" not in result.stderr + result.stdout


def test_the_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in table]
    assert not missing, f"README's configuration table lacks {missing}"


SCRAM = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "llm",
    "KAFKA_SASL_PASSWORD": "pw-sentinel-kafka-5e1d",
}


@pytest.mark.parametrize(
    ("env", "says"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"},
            "KAFKA_SECURITY_PROTOCOL=SASL_SSL needs KAFKA_SASL_MECHANISM",
        ),
        (
            {"KAFKA_SASL_MECHANISM": "PLAIN", "KAFKA_SASL_USERNAME": "u"},
            "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            SCRAM | {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "unencrypted: use SASL_SSL, or set KAFKA_ALLOW_UNENCRYPTED_SASL=true",
        ),
        (
            SCRAM | {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_MECHANISM": "PLAIN"},
            "sends every record and the password unencrypted",
        ),
        (
            {k: v for k, v in SCRAM.items() if k != "KAFKA_SASL_PASSWORD"},
            "needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "OAUTHBEARER"},
            "OAUTHBEARER needs KAFKA_SASL_OAUTH_TOKEN_FILE",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "AWS_MSK_IAM"},
            "AWS_MSK_IAM needs AWS_REGION",
        ),
        (SCRAM | {"KAFKA_SSL_CAFILE": "/no/such/ca.pem"}, "KAFKA_SSL_CAFILE: no such file"),
        (
            {"KAFKA_SSL_CAFILE": "/etc/hostname"},
            "KAFKA_SSL_CAFILE set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT does not use TLS",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/etc/hostname"},
            "KAFKA_SSL_KEYFILE needs KAFKA_SSL_CERTFILE",
        ),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
        (
            {"LLM_TOPIC_REPLICATION_FACTOR": "2", "LLM_TOPIC_MIN_INSYNC_REPLICAS": "3"},
            "LLM_TOPIC_MIN_INSYNC_REPLICAS (3) is above LLM_TOPIC_REPLICATION_FACTOR (2)",
        ),
    ],
)
def test_kafka_security_that_cannot_work_is_refused_at_start_naming_the_variables(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=re.escape(says)) as refused:
        load_settings()
    assert SCRAM["KAFKA_SASL_PASSWORD"] not in str(refused.value)


def test_one_cluster_value_carries_the_connection_and_never_shows_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in (SCRAM | {"KAFKA_SASL_MECHANISM": "scram-sha-512"}).items():
        monkeypatch.setenv(name, value)
    cluster = load_settings().cluster()
    assert cluster.security.protocol == "SASL_SSL"
    assert cluster.security.mechanism == "SCRAM-SHA-512"
    assert cluster.replication.for_brokers(1) == (1, 1)
    assert cluster.replication.for_brokers(3) == (3, 2)
    assert cluster.replication.for_brokers(5) == (3, 2)
    assert SCRAM["KAFKA_SASL_PASSWORD"] not in repr(cluster)
    view = RuntimeConfig(load_settings()).view()
    assert view["kafka_sasl_password"] == "**********"


def test_the_connection_pool_follows_the_concurrency_unless_set_and_a_lower_bound_is_said(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_WORKER_CONCURRENCY", "1024")
    monkeypatch.setenv(
        "LLM_SHADOW",
        '[{"provider": "openai", "model": "gpt-5.4-nano", "sample": 0.5, "queue": 99}]',
    )
    settings = load_settings()
    assert settings.provider("openai").max_connections == 1024 + 100
    assert settings.provider("deepseek").max_connections == 1024
    assert settings.concurrency_bounds() == []

    monkeypatch.setenv("LLM_MAX_CONNECTIONS_PER_PROVIDER", "256")
    monkeypatch.setenv("LLM_PROVIDER_LIMITS", '{"deepseek": {"concurrency": 512}}')
    monkeypatch.setenv("LLM_PROVIDER_CHAIN", "openai,deepseek")
    settings = load_settings()
    assert settings.provider("openai").max_connections == 256
    lines = settings.concurrency_bounds()
    assert lines[0].startswith("LLM_MAX_CONNECTIONS_PER_PROVIDER (256) holds openai to 256")
    assert "below the 1124 this worker may make" in lines[0]
    assert "23%" in lines[0]
    assert "holds deepseek to 512 calls at once for the group" in lines[-1]
    assert "50% of its concurrency" in lines[-1]
    assert len(lines) == 3  # the pool for each provider, deepseek's limit
