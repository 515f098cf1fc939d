"""Model providers: `get_provider("local")`, `get_provider("fake")`, and the registry."""

from .base import (
    ClassifyRequest,
    Completion,
    CompletionRequest,
    Progress,
    Provider,
    get_provider,
    provider,
    registered_providers,
)

__all__ = [
    "ClassifyRequest",
    "Completion",
    "CompletionRequest",
    "Progress",
    "Provider",
    "get_provider",
    "provider",
    "registered_providers",
]
