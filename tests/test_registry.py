"""One registry entry per provider, and every other table derived from it."""

from __future__ import annotations

import pytest

from llm_sim.server import DIALECTS
from streams.config.settings import Settings
from streams.providers.base import Provider
from streams.providers.build import adapter_for
from streams.registry import SPECS
from streams.vocab import PROVIDER_NAMES
from streams.web.openapi import document


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_each_entry_names_an_adapter_for_its_provider(name: str) -> None:
    adapter = adapter_for(name)
    assert issubclass(adapter, Provider)
    assert adapter.name == name


@pytest.mark.parametrize("name", PROVIDER_NAMES)
def test_settings_read_each_providers_three_variables(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = SPECS[name]
    monkeypatch.setenv(spec.key_variable, "k-123")
    monkeypatch.setenv(spec.url_variable, "http://127.0.0.1:9/x/")
    monkeypatch.setenv(spec.model_variable, "some-model")
    config = Settings().provider(name)
    assert config.api_key is not None
    assert config.api_key.get_secret_value() == "k-123"
    assert config.base_url == "http://127.0.0.1:9/x"
    assert config.model == "some-model"


def test_defaults_come_from_the_registry() -> None:
    settings = Settings()
    for name, spec in SPECS.items():
        config = settings.provider(name)
        assert config.model == spec.default_model
        assert config.base_url == spec.default_base_url.rstrip("/")


def test_the_simulator_has_a_dialect_for_every_provider_under_its_url_variable() -> None:
    served = {dialect.provider: dialect.env_name for dialect in DIALECTS}
    assert served == {name: spec.url_variable for name, spec in SPECS.items()}


def test_the_api_document_lists_exactly_the_registered_providers() -> None:
    (parameter,) = document()["paths"]["/providers/{name}"]["get"]["parameters"]
    assert parameter["schema"]["enum"] == list(SPECS)
