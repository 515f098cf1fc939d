"""The provider seam: requests in, text or option probabilities out, and what a request costs.

Providers are the only modules that import model SDKs, inside their methods, so `import mwe`
stays fast and a missing extra becomes a clear error. A provider class carries what mwe needs to
know about it (prices, prompt-cache price factors, key variable, log-probability and embedding
support, its Inspect model name), so a new provider is one class registered under one name
(providers/_registry.py).
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, ClassVar, TypedDict

from pydantic import BaseModel

from ..errors import ProviderError

__all__ = [
    "ChatRequest",
    "ClassifyRequest",
    "Completion",
    "CompletionRequest",
    "OnResult",
    "Price",
    "Progress",
    "Provider",
    "ProviderSettings",
    "TokenUsage",
]

Progress = Callable[[int], None]
"""Called with the number of requests just finished, so the CLI can move a progress bar."""
OnResult = Callable[[int, Any], None]
"""Called on the caller's thread with (request index, answer) as each answer lands, so the engine
can cache it at once: a kill then loses only the requests still in flight."""


@lru_cache(maxsize=64)
def schema_json(schema: type[BaseModel]) -> str:
    """A response model's JSON schema, built once per class (keys and size estimates need it for
    every request, and pydantic rebuilds it on each call)."""
    return json.dumps(schema.model_json_schema(), sort_keys=True)


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


@dataclass(frozen=True)
class ChatRequest:
    """A chat request whose answer must validate against `schema` (structured output, for chat models).

    `system` is the fixed part of a stage's prompts (instructions, rubric, few-shot block), marked
    cacheable for providers with prompt caching; `prompt` is the part that varies per request.
    """

    system: str
    prompt: str
    schema: type[BaseModel]
    max_tokens: int = 1024
    temperature: float = 1.0
    seed: int = 0

    def reask(self, answer: str, reason: str) -> ChatRequest:
        """The one re-ask after an answer that did not fit: the same request, with the answer and
        what was wrong with it, asking for a corrected answer (a request of its own, so cached)."""
        prompt = (
            f"{self.prompt}\n\nYour previous answer was:\n<previous_answer>\n{answer}\n</previous_answer>\n"
            f"It was rejected: {reason}\nAnswer the request again, exactly in the required format."
        )
        return ChatRequest(self.system, prompt, self.schema, self.max_tokens, self.temperature, self.seed)

    def key(self, provider: str, model: str) -> str:
        payload = {
            "system": self.system,
            "prompt": self.prompt,
            "schema": json.loads(schema_json(self.schema)),
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "seed": self.seed,
        }
        return _key("chat", provider, model, payload)


@dataclass(frozen=True)
class EmbedRequest:
    """Vectors for a chunk of texts, sent as one API request (the engine caches each text)."""

    texts: tuple[str, ...]

    def key(self, provider: str, model: str) -> str:
        return _key("embed", provider, model, {"texts": list(self.texts)})


def embed_key(provider: str, model: str, text: str) -> str:
    """The cache key of one text's vector, whatever chunk it was sent in."""
    return _key("embed-one", provider, model, {"text": text})


class TokenUsage(TypedDict, total=False):
    """Billed tokens as Completion's keyword arguments (providers build one from SDK usage)."""

    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int


@dataclass
class Completion:
    """One answer. `data` holds validated structured output; `error` marks a failed request (never
    cached, turned into a rejection with its reason). With `invalid` the server did answer (and
    was paid) but the answer did not fit the schema: `text` keeps the raw
    answer and `error` why it failed; such an answer is data, cached like any other, so a re-run
    does not pay for it again and the stage records a `parse` rejection instead of a failure.
    Token counts are what the provider billed: `input_tokens` excludes prompt-cache reads and
    writes, which are counted apart."""

    text: str
    input_tokens: int = 0
    output_tokens: int = 0
    cached: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] | None = None
    error: str | None = None
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    batch: bool = False
    invalid: bool = False
    truncated: bool = False
    """The provider stopped the answer at the request's max_tokens (not at a stop sequence or
    the model's own end): its last field is likely cut off, and the rules reject such items."""

    @property
    def failed(self) -> bool:
        """A request that got no usable answer from the server (not cached, counts as an error)."""
        return bool(self.error) and not self.invalid

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "text": self.text,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        for name in ("data", "cache_read_tokens", "cache_write_tokens", "batch", "invalid", "error", "truncated"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Completion:
        return cls(
            d["text"],
            d.get("input_tokens", 0),
            d.get("output_tokens", 0),
            cached=True,
            data=d.get("data"),
            cache_read_tokens=d.get("cache_read_tokens", 0),
            cache_write_tokens=d.get("cache_write_tokens", 0),
            batch=d.get("batch", False),
            invalid=d.get("invalid", False),
            error=d.get("error"),
            truncated=d.get("truncated", False),
        )


@dataclass(frozen=True)
class Price:
    """USD per million tokens; prompt-cache writes and reads are multiples of the input price,
    a batch request a multiple of the whole request."""

    input: float
    output: float
    cache_write: float = 1.25
    cache_read: float = 0.1
    batch_discount: float = 0.5
    source: str = "built-in"

    def cost(self, c: Completion) -> float:
        usd = (
            c.input_tokens * self.input
            + c.cache_write_tokens * self.input * self.cache_write
            + c.cache_read_tokens * self.input * self.cache_read
            + c.output_tokens * self.output
        ) / 1e6
        return usd * (self.batch_discount if c.batch else 1.0)

    def bound(self, input_tokens: int, output_tokens: int, batch: bool = False) -> float:
        """The most a request can cost: every input token uncached, `max_tokens` written."""
        usd = (input_tokens * self.input + output_tokens * self.output) / 1e6
        return usd * (self.batch_discount if batch else 1.0)


FREE = Price(0.0, 0.0, source="free")


@dataclass
class ProviderSettings:
    """What a user may set about a provider from the CLI, the API or the config file."""

    base_url: str | None = None
    api_key_env: str | None = None
    rpm: float | None = None
    itpm: float | None = None
    otpm: float | None = None
    concurrency: int | None = None
    timeout: float | None = None
    max_retries: int | None = None
    structured: str | None = None
    """How an OpenAI-compatible server is held to a schema: json_schema, tools or json (default: probed)."""


class Provider(ABC):
    """A model behind one name. Capabilities and prices are class attributes, as in simonw/llm."""

    name: ClassVar[str]
    is_fake: ClassVar[bool] = False
    cacheable: ClassVar[bool] = True
    supports_logprobs: ClassVar[bool] = False
    """`classify` reads option probabilities from log-probabilities (judge and label checks)."""
    supports_embeddings: ClassVar[bool] = False
    """`embed` works, so `<name>/<model>` is an embedder (dedup through the response cache)."""
    inspect_logprobs: ClassVar[bool] = False
    """Its Inspect model returns top log-probabilities, so `mwe eval` reads an option from them
    instead of sampling k answers."""
    chat: ClassVar[bool] = False
    """True for chat models: generators send ChatRequests with a schema instead of completion text."""
    supports_batch: ClassVar[bool] = False
    key_env: ClassVar[str] = ""
    """Environment variable holding the key, unless the user names another with --api-key-env."""
    keep_rate: ClassVar[float | None] = None
    """Share of generated items a build with this model kept, measured (None: the planner's
    general prior). The first round asks for deficit / keep rate: a prior far above the model's
    real rate means extra rounds, each as long as its slowest request."""
    free: ClassVar[bool] = False
    """Costs nothing unless mwe.toml gives a price (the embedded and fake models, own servers)."""
    prices: ClassVar[tuple[tuple[str, float, float], ...]] = ()
    """(model glob, input, output): list prices in USD per million tokens, most specific first."""
    cache_write_price: ClassVar[float] = 1.25
    """A prompt-cache write as a multiple of the input price."""
    cache_read_price: ClassVar[float] = 0.1
    """A prompt-cache read as a multiple of the input price, unless `cache_read_prices` says otherwise."""
    cache_read_prices: ClassVar[tuple[tuple[str, float], ...]] = ()
    """(model glob, multiple): cache-read factors that depend on the model family."""

    def __init__(self, model: str) -> None:
        self.model = model

    @classmethod
    def create(cls, model: str, settings: ProviderSettings) -> Provider:
        """The instance `get_provider` returns (providers that take settings override this)."""
        return cls(model)

    @classmethod
    def price(cls, model: str) -> Price | None:
        """The list price of `model`, or None when this provider does not know it."""
        if cls.free:
            return FREE
        for pattern, i, o in cls.prices:
            if fnmatch.fnmatchcase(model, pattern):
                read = next(
                    (r for p, r in cls.cache_read_prices if fnmatch.fnmatchcase(model, p)), cls.cache_read_price
                )
                return Price(i, o, cache_write=cls.cache_write_price, cache_read=read)
        return None

    @classmethod
    def inspect_model(cls, model: str) -> str:
        """Inspect's name for `model`: by default mwe's own Inspect model, `mwe/<name>/<model>`,
        which samples through this provider's `complete` (see mwe._inspect_model)."""
        return f"mwe/{cls.name}/{model}"

    @property
    def label(self) -> str:
        """The name users type, recorded in lineage and manifests."""
        return self.name if self.model in ("", self.name) else f"{self.name}/{self.model}"

    @abstractmethod
    def complete(self, requests: Sequence[CompletionRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Answer every request, in order; a provider may run them concurrently."""

    @abstractmethod
    def classify(self, requests: Sequence[ClassifyRequest], on_result: OnResult | None = None) -> list[list[float]]:
        """Probabilities over each request's options (normalised over those options only)."""

    def structured(self, requests: Sequence[ChatRequest], on_result: OnResult | None = None) -> list[Completion]:
        """Answers validated against each request's schema, in `Completion.data`."""
        raise ProviderError(f"{self.label} does not answer chat requests with a schema")

    def embed(self, requests: Sequence[EmbedRequest], on_result: OnResult | None = None) -> list[Completion]:
        """One Completion per chunk, its vectors in `data["vectors"]` in the chunk's order."""
        raise ProviderError(f"{self.label} gives no embeddings; use openai/<embedding model> or tfidf")

    def check_ready(self) -> None:  # noqa: B027 - optional hook
        """Fail fast (missing key, missing extra) before the first request of a run."""

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "fake": self.is_fake}

    def close(self) -> None:  # noqa: B027 - optional hook, most providers hold nothing
        """Release model memory or connections."""
