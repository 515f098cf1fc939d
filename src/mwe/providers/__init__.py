"""Model providers: `get_provider("local" | "fake" | "anthropic/…" | "openai/…" | "openai-compatible/…")`."""

from .base import (
    ChatRequest,
    ClassifyRequest,
    Completion,
    CompletionRequest,
    OnResult,
    Progress,
    Provider,
    ProviderSettings,
    get_provider,
    provider,
    registered_providers,
)

__all__ = [
    "ChatRequest",
    "ClassifyRequest",
    "Completion",
    "CompletionRequest",
    "OnResult",
    "Progress",
    "Provider",
    "ProviderSettings",
    "get_provider",
    "provider",
    "registered_providers",
]
