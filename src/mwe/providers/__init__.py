"""Model providers: `get_provider("local" | "fake" | "anthropic/…" | "openai/…" | "openai-compatible/…")`."""

from ._registry import PROVIDERS, get_provider, provider, provider_class, registered_providers
from .base import (
    ChatRequest,
    ClassifyRequest,
    Completion,
    CompletionRequest,
    OnResult,
    Price,
    Progress,
    Provider,
    ProviderSettings,
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
