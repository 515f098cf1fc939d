"""Model providers: `get_provider("local" | "fake" | "anthropic/…" | "openai/…" | "openai-compatible/…")`.

A provider from another package is a `Provider` subclass (`complete` and `classify`, or
`chat = True` and `structured`; class attributes for its prices, prompt-cache price factors, key
variable, log-probability and embedding support; `inspect_model` for its Inspect name) named by an
entry point, after which `--model name/model` builds, estimates and evaluates through it:

    [project.entry-points."mwe.providers"]
    name = "my_package.module:MyProvider"

Formats, exporters, rules and embedders install the same way (`mwe.formats`, `mwe.exporters`,
`mwe.rules`, `mwe.embedders`); in code, `@provider("name")` registers a class.
"""

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
