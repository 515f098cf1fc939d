"""Built-in provider factories. Each imports its implementation lazily (and so its SDK)."""

from __future__ import annotations

from .base import Provider, ProviderSettings, provider


@provider("fake")
def _fake(model: str, settings: ProviderSettings) -> Provider:
    from .fake import FakeProvider

    return FakeProvider(model)


@provider("local")
def _local(model: str, settings: ProviderSettings) -> Provider:
    from .local import LocalProvider

    return LocalProvider(model)


@provider("anthropic")
def _anthropic(model: str, settings: ProviderSettings) -> Provider:
    from .anthropic import AnthropicProvider

    return AnthropicProvider(model, settings)


@provider("openai")
def _openai(model: str, settings: ProviderSettings) -> Provider:
    from .openai import OpenAIProvider

    return OpenAIProvider(model, settings)


@provider("openai-compatible")
def _openai_compatible(model: str, settings: ProviderSettings) -> Provider:
    from .openai import OpenAICompatibleProvider

    return OpenAICompatibleProvider(model, settings)
