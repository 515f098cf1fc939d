"""Generators build prompts and parse answers; they never call a model (the engine does).

A generator is registered under the spec `format` it serves. The pipeline asks it for requests
that fill a facet and hands back the completions to parse; everything that cannot be parsed
comes back as a Rejection with the raw text, so nothing is lost silently.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from ..items import Candidate, Rejection
from ..providers.base import ChatRequest, ClassifyRequest, Completion, CompletionRequest

if TYPE_CHECKING:
    from ..spec import ThreatModel

__all__ = ["Generator", "generator", "get_generator", "known_formats", "sample_seed"]


def sample_seed(seed: int, *parts: object) -> int:
    """A per-request seed from the run seed and the request's identity, not from a shared RNG,
    so a resumed or partial run asks exactly the same questions (and hits the cache)."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


class Generator(ABC):
    """Two prompt styles per format: a completion document for base models (the embedded model)
    and a chat request with a pydantic schema for chat models (`chat=True`), which answer with
    several items per request."""

    name: ClassVar[str]
    chat_items_per_request: ClassVar[int] = 4

    def __init__(self, spec: ThreatModel, seed: int, chat: bool = False) -> None:
        self.spec = spec
        self.seed = seed
        self.chat = chat

    @property
    def items_per_request(self) -> int:
        return self.chat_items_per_request if self.chat else 1

    @abstractmethod
    def requests(
        self, facet: str, start: int, count: int, temperature: float
    ) -> list[CompletionRequest] | list[ChatRequest]:
        """`count` requests for `facet`, numbered from `start` (the facet's running sample index)."""

    def parse(
        self, facet: str, answer: Completion, lineage: dict[str, object]
    ) -> tuple[list[Candidate], list[Rejection]]:
        """Turn one answer into candidates, or rejections carrying the raw answer and the reason."""
        if answer.error:
            return [], [
                Rejection(stage="parse", reason=f"no usable answer: {answer.error}", facet=facet, lineage=dict(lineage))
            ]
        if answer.data is not None:
            return self.parse_data(facet, answer.data, lineage)
        return self.parse_text(facet, answer.text, lineage)

    @abstractmethod
    def parse_text(self, facet: str, text: str, lineage: dict[str, object]) -> tuple[list[Candidate], list[Rejection]]:
        """Parse a completion-style answer."""

    @abstractmethod
    def parse_data(
        self, facet: str, data: dict[str, object], lineage: dict[str, object]
    ) -> tuple[list[Candidate], list[Rejection]]:
        """Parse a structured answer (already validated against the request's schema)."""

    def label_requests(self, cands: list[Candidate]) -> list[ClassifyRequest] | None:
        """Requests that let the model pick each item's matching option by log-probability, or None
        when the generator's parse already fixed the labels."""
        return None

    def apply_labels(self, cands: list[Candidate], probs: list[list[float]]) -> None:  # noqa: B027
        """Set the matching option from label probabilities (only called after label_requests)."""


_REGISTRY: dict[str, type[Generator]] = {}


def generator(name: str) -> Callable[[type[Generator]], type[Generator]]:
    def wrap(cls: type[Generator]) -> type[Generator]:
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return wrap


def _load_builtins() -> None:
    from . import mcq  # noqa: F401 - registers itself


def known_formats() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def get_generator(name: str) -> type[Generator]:
    _load_builtins()
    return _REGISTRY[name]
