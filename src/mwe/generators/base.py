"""Generators build prompts and parse answers; they never call a model (the engine does).

A generator is registered under the spec `format` it serves. The pipeline asks it for requests
that fill a facet and hands back the completions to parse; everything that cannot be parsed
comes back as a Rejection with the raw text, so nothing is lost silently.

The class is also everything mwe knows about its format, so a new format is one module: its
spec example model (`example_model`), how its items are laid out (`layout`), the rows it exports
(`inspect_rows`, `evals_row`) and how an eval asks its items (`eval_task`, `perez_question`).
Spec, balance, export and eval look the class up by `item.format` (`format_of`) instead of
guessing the kind of an item from which fields it has.
"""

from __future__ import annotations

import hashlib
import random
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from pydantic import create_model

from .._inspect_task import CHOICE_TASK
from .._registry import Registry, name_class
from ..examples import Example
from ..items import LETTERS, Candidate, Item, Layout, Rejection, inline_question
from ..providers.base import ChatRequest, ClassifyRequest, Completion, CompletionRequest

if TYPE_CHECKING:
    from ..spec import ThreatModel

__all__ = [
    "FORMATS",
    "Generator",
    "InspectFile",
    "PerezQuestion",
    "example_model",
    "format_of",
    "generator",
    "get_generator",
    "known_formats",
    "sample_seed",
]

Row = dict[str, Any]


class InspectFile(NamedTuple):
    """A JSONL file of `mwe export --format inspect` and the `@task` (source, `{name}` standing
    for the threat model) that runs it; `order` places files and tasks in a fixed order."""

    name: str
    task: str
    order: int = 50


CHOICE_FILE = InspectFile("mcq.jsonl", CHOICE_TASK, 10)


class PerezQuestion(NamedTuple):
    """How `mwe/perez` asks an item: the prompt, the labels the model answers with, an opening of
    the assistant turn ("(" for lettered options, as Perez et al.) and the matching label."""

    prompt: str
    labels: list[str]
    prefill: str | None
    target: str


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
    layout: ClassVar[Layout] = "shuffled"
    """How the published item shows its answers (items.Candidate explains the three)."""
    sides: ClassVar[int] = 1
    """Fixed-order formats write each side in its own requests: sample i asks for side i % sides."""
    chat_items_per_request: ClassVar[int] = 4
    example_model: ClassVar[type[Example]]
    """The pydantic model of this format's spec examples (its `format` becomes Literal[name])."""
    eval_task: ClassVar[str | None] = "perez"
    """The mwe.inspect task that measures a model on these items (`perez`, `compliance_gap`), or
    None when they are scored elsewhere (open-ended items: the exported Inspect task)."""

    @classmethod
    def inspect_rows(cls, item: Item, metadata: Row) -> list[tuple[InspectFile, Row]]:
        """The rows `mwe export --format inspect` writes for `item`, each with its file: by default
        one multiple-choice sample (options in published order, the matching letter as target)."""
        row = {
            "id": item.id,
            "input": item.question,
            "choices": item.choices,
            "target": item.answer_matching_behavior,
            "metadata": metadata,
        }
        return [(CHOICE_FILE, row)]

    @classmethod
    def evals_row(cls, item: Item) -> tuple[str, Row] | None:
        """The anthropics/evals line for `item` and the suffix of its file name ("" for the A/B
        file), or None where that layout has no form for it. Default: options inline, " (A)"."""
        others = [f" ({x})" for x in item.answer_not_matching_behavior]
        return "", {
            "question": inline_question(item.question, item.choices),
            "answer_matching_behavior": f" ({item.answer_matching_behavior})",
            "answer_not_matching_behavior": others[0] if len(others) == 1 else others,
        }

    @classmethod
    def perez_question(cls, item: Item) -> PerezQuestion | None:
        """How `mwe/perez` asks `item` (None: not at all): lettered options inline."""
        if not item.choices or item.answer_matching_behavior is None:
            return None
        prompt = inline_question(item.question, item.choices) + "\n\nAnswer with the letter of one option."
        return PerezQuestion(prompt, list(LETTERS[: len(item.choices)]), "(", item.answer_matching_behavior)

    def __init__(self, spec: ThreatModel, seed: int, chat: bool = False) -> None:
        self.spec = spec
        self.seed = seed
        self.chat = chat
        self.examples = spec.examples_for(self.name) or list(spec.examples)

    def candidate(
        self,
        facet: str,
        question: str,
        matching: str,
        not_matching: list[str],
        lineage: dict[str, object],
        **fields: Any,
    ) -> Candidate:
        return Candidate(
            threat_model=self.spec.name,
            format=self.name,
            layout=self.layout,
            facet=facet,
            question=question.strip(),
            matching=matching.strip(),
            not_matching=[o.strip() for o in not_matching],
            fields=fields,
            lineage={"generator": self.name, **lineage},
        )

    def rejection(self, facet: str, reason: str, raw: str | None, lineage: dict[str, object]) -> Rejection:
        """Output that did not parse, kept with its raw text."""
        return Rejection(stage="parse", reason=reason, facet=facet, raw=raw, lineage=dict(lineage))

    def variance(self, i: int) -> str | None:
        """The spec's variance prompts in rotation, so request i of every facet gets a different one."""
        prompts = self.spec.variance_prompts
        return prompts[i % len(prompts)].strip() if prompts else None

    def topic(self, facet: str, i: int) -> str:
        """The `Topic:` line of a completion request: the facet and request i's variance prompt."""
        v = self.variance(i)
        return facet if v is None else f"{facet} ({v})"

    def shots(self, tag: str, limit: int) -> list[Example]:
        """This format's examples in an order fixed by the run seed (Perez et al. sampled few-shot
        examples per prompt; one order per run keeps the prompt prefix, and llama.cpp's KV cache, shared)."""
        shots = list(self.examples)
        random.Random(sample_seed(self.seed, self.spec.name, tag)).shuffle(shots)
        return shots[:limit]

    @property
    def items_per_request(self) -> int:
        """Items a chat request asks for: the spec's `defaults.items_per_request` for this format,
        else the format's measured default; a completion writes one."""
        if not self.chat:
            return 1
        return self.spec.defaults.items_per_request.get(self.name, self.chat_items_per_request)

    def batch_sizes(self, samples: Sequence[int], sizes: Sequence[int] | None) -> list[int]:
        """Items each chat request asks for: `sizes` where the planner wants less than a full batch."""
        return list(sizes) if sizes is not None else [self.items_per_request] * len(samples)

    @abstractmethod
    def requests(
        self, facet: str, samples: Sequence[int], temperature: float, sizes: Sequence[int] | None = None
    ) -> list[CompletionRequest] | list[ChatRequest]:
        """One request per sample index of `facet`. The index fixes the request (its seed, variance
        prompt and, for persona, the polarity), so the planner can ask for exactly what is missing;
        `sizes`, for chat models, how many items each request asks for (default: a full batch)."""

    def parse(
        self, facet: str, answer: Completion, lineage: dict[str, object]
    ) -> tuple[list[Candidate], list[Rejection]]:
        """Turn one answer into candidates, or rejections carrying the raw answer and the reason."""
        if answer.invalid:  # answered and paid for, but not in the asked shape: data, with its raw text
            return [], [
                self.rejection(facet, answer.error or "the answer did not fit the schema", answer.text, lineage)
            ]
        if answer.error:
            return [], [self.rejection(facet, f"no usable answer: {answer.error}", None, lineage)]
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


FORMATS: Registry[type[Generator]] = Registry(
    "format",
    "mwe.formats",
    modules=("mwe.generators.mcq", "mwe.generators.open_ended", "mwe.generators.persona"),
    adopt=name_class,
)
"""Generator classes by the spec `format` they serve (a class learns its `name` when registered);
the built-in modules register on first use."""


def format_of(item: Item) -> type[Generator]:
    """The class of `item`'s format. A dataset whose format plugin is not installed here is read
    by the built-in format its fields look like, so old or foreign datasets still export and run."""
    if item.format in FORMATS:
        return FORMATS[item.format]
    if item.answer_matching_behavior is None:
        return FORMATS["open_ended"]
    if item.conditions:
        return FORMATS["alignment_faking"]
    return FORMATS["persona" if item.statement is not None else "mcq"]


@cache
def _tagged(name: str, model: type[Example]) -> type[Example]:
    title = "".join(p.title() for p in re.split(r"[^A-Za-z0-9]+", name)) + "Example"
    fmt: Any = Literal[name]  # a type made at run time: one per registered format
    tagged: type[Example] = create_model(title, __base__=model, __doc__=model.__doc__, format=(fmt, ...))
    return tagged


def example_model(name: str) -> type[Example]:
    """The spec example model of format `name`: its class's `example_model`, with `format`
    narrowed to `name` so the spec's examples are a union told apart by `format`."""
    return _tagged(name, FORMATS.resolve(name).example_model)


def generator(name: str) -> Callable[[type[Generator]], type[Generator]]:
    """Register a Generator class as the format `name`."""
    return FORMATS.register(name)


def known_formats() -> list[str]:
    return FORMATS.names()


def get_generator(name: str) -> type[Generator]:
    return FORMATS.resolve(name)
