"""Provider classes by name, and "provider/model" strings resolved to provider instances.

A new provider is one Provider subclass registered under one name: `@provider("name")` in code,
or an entry point in the `mwe.providers` group of another package (loaded on first lookup).
"""

from __future__ import annotations

from collections.abc import Callable

from .._registry import Registry, name_class
from ..errors import UsageError
from .base import Provider, ProviderSettings

__all__ = ["PROVIDERS", "get_provider", "provider", "provider_class", "registered_providers"]


PROVIDERS: Registry[type[Provider]] = Registry(
    "provider",
    "mwe.providers",
    lazy={
        "fake": "mwe.providers.fake:FakeProvider",
        "local": "mwe.providers.local:LocalProvider",
        "anthropic": "mwe.providers.anthropic:AnthropicProvider",
        "openai": "mwe.providers.openai:OpenAIProvider",
        "openai-compatible": "mwe.providers.openai:OpenAICompatibleProvider",
    },
    adopt=name_class,
)
"""Provider classes by the name users type before the first `/` (a class learns its `name` when
registered). Built-ins are imported on first use (a provider module imports no SDK at import time)."""


def provider(name: str) -> Callable[[type[Provider]], type[Provider]]:
    """Register a Provider class under `name` (the part before the first `/`)."""
    return PROVIDERS.register(name)


def registered_providers() -> list[str]:
    return PROVIDERS.names()


def provider_class(label: str) -> type[Provider] | None:
    """The class of the provider a model name ("provider/model") names, or None if none does."""
    return PROVIDERS.get(label.partition("/")[0])


def get_provider(spec: str, settings: ProviderSettings | None = None) -> Provider:
    """Resolve "provider/model" (or a bare "local"/"fake") to a provider instance. Nothing is sent
    and no key is read here (a dry run builds providers too); `check_ready` does that."""
    name, _, model = spec.partition("/")
    if name not in PROVIDERS:
        known = ", ".join(PROVIDERS.names())
        raise UsageError(f"unknown model {spec!r}: the provider {name!r} is not one of {known}")
    return PROVIDERS[name].create(model or name, settings or ProviderSettings())
