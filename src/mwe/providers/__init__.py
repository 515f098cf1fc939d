"""Model providers: `get_provider("local" | "fake" | "anthropic/…" | "openai/…" | "openai-compatible/…")`."""

from .base import (
    PROVIDERS,
    ChatRequest,
    ClassifyRequest,
    Completion,
    CompletionRequest,
    OnResult,
    Price,
    Progress,
    Provider,
    ProviderSettings,
    get_provider,
    provider,
    provider_class,
    registered_providers,
)

__all__ = [
    "PROVIDERS",
    "ChatRequest",
    "ClassifyRequest",
    "Completion",
    "CompletionRequest",
    "OnResult",
    "Price",
    "Progress",
    "Provider",
    "ProviderSettings",
    "get_provider",
    "provider",
    "provider_class",
    "registered_providers",
]
