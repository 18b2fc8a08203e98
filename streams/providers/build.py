"""One adapter per provider, from the registry's ``module:Class`` names."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from streams.config.slices import ProviderConfig
from streams.providers.base import Provider
from streams.registry import SPECS

__all__ = ["adapter_for", "build_providers"]


def adapter_for(name: str) -> type[Provider]:
    module, _, attribute = SPECS[name].adapter.partition(":")
    adapter = getattr(importlib.import_module(module), attribute)
    if not (isinstance(adapter, type) and issubclass(adapter, Provider)):
        raise TypeError(f"{SPECS[name].adapter} is not a Provider")
    return adapter


def build_providers(config_of: Callable[[str], ProviderConfig]) -> dict[str, Provider]:
    """One adapter (with its pooled client) per provider, chained or not: the chain can
    change at run time. Clients connect lazily, so an unused one costs nothing."""
    return {name: adapter_for(name)(config_of(name)) for name in SPECS}
