"""The provider seam: requests in, text or option probabilities out, plus the registry.

Providers are the only modules that import model SDKs; each registers a factory that imports its
SDK inside the call, so `import mwe` stays fast and a missing extra becomes a clear error.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from ..errors import UsageError

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

Progress = Callable[[int], None]
"""Called with the number of requests just finished, so the CLI can move a progress bar."""


def _key(kind: str, provider: str, model: str, payload: dict[str, Any]) -> str:
    canon = json.dumps({"kind": kind, "provider": provider, "model": model, **payload}, sort_keys=True)
    return hashlib.sha256(canon.encode()).hexdigest()


@dataclass(frozen=True)
class CompletionRequest:
    """A text-completion request; `seed` doubles as the sample index, so it is part of the key."""

    prompt: str
    max_tokens: int = 256
    temperature: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int = 0

    def key(self, provider: str, model: str) -> str:
        return _key("complete", provider, model, asdict(self))


@dataclass(frozen=True)
class ClassifyRequest:
    """Which of `options` is the most likely next text after `prompt` (a log-probability judge)."""

    prompt: str
    options: tuple[str, ...] = ("Yes", "No")

    def key(self, provider: str, model: str) -> str:
        return _key("classify", provider, model, asdict(self))


@dataclass
class Completion:
    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


class Provider(ABC):
    """A model behind one name. Capabilities are class attributes, as in simonw/llm."""

    name: ClassVar[str]
    is_fake: ClassVar[bool] = False
    cacheable: ClassVar[bool] = True
    supports_logprobs: ClassVar[bool] = False

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def label(self) -> str:
        """The name users type, recorded in lineage and manifests."""
        return self.name if self.model in ("", self.name) else f"{self.name}/{self.model}"

    @abstractmethod
    def complete(self, requests: Sequence[CompletionRequest], progress: Progress | None = None) -> list[Completion]:
        """Answer every request, in order; a provider may run them concurrently."""

    @abstractmethod
    def classify(self, requests: Sequence[ClassifyRequest], progress: Progress | None = None) -> list[list[float]]:
        """Probabilities over each request's options (normalised over those options only)."""

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "fake": self.is_fake}

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release model memory or connections."""


_REGISTRY: dict[str, Callable[[str], Provider]] = {}


def provider(name: str) -> Callable[[Callable[[str], Provider]], Callable[[str], Provider]]:
    """Register a factory `f(model) -> Provider` under `name` (the part before the first `/`)."""

    def wrap(factory: Callable[[str], Provider]) -> Callable[[str], Provider]:
        _REGISTRY[name] = factory
        return factory

    return wrap


def registered_providers() -> list[str]:
    from . import _registry  # noqa: F401 - importing registers the built-in factories

    return sorted(_REGISTRY)


def get_provider(spec: str) -> Provider:
    """Resolve "provider/model" (or a bare "local"/"fake") to a provider instance."""
    known = registered_providers()
    name, _, model = spec.partition("/")
    if name not in _REGISTRY:
        raise UsageError(f"unknown model {spec!r}: the provider {name!r} is not one of {', '.join(known)}")
    return _REGISTRY[name](model or name)
