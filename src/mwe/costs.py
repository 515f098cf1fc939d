"""Prices, the per-stage token ledger, and the spending guard behind --max-cost.

Prices are list prices in USD per million tokens, as published by each provider (checked
2026-11; they change: override them in mwe.toml, see config.py). Prompt-cache writes and reads
and batch requests are priced as multiples of the input price and of the whole request.
The embedded and fake models cost nothing; a self-hosted `openai-compatible` server is priced at
zero unless the config file gives it a price.
"""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from typing import Any

from .errors import CostLimitReached
from .providers.base import ChatRequest, ClassifyRequest, Completion, CompletionRequest, EmbedRequest, schema_json

__all__ = ["CostGuard", "Price", "StageUsage", "estimate_tokens", "price_for", "request_size"]


def estimate_tokens(text: str) -> int:
    """About four characters per token for English text: used to reserve rate-limit allowance,
    for --max-cost bounds and for dry-run estimates, never for billing (the provider's reported
    usage is what the ledger records)."""
    return len(text) // 4 + 1


def request_size(req: ChatRequest | CompletionRequest | ClassifyRequest | EmbedRequest) -> tuple[int, int]:
    """(estimated input tokens, most output tokens) of one request."""
    if isinstance(req, EmbedRequest):
        return sum(estimate_tokens(t) for t in req.texts), 0
    if isinstance(req, ChatRequest):
        schema = len(schema_json(req.schema)) // 4
        return estimate_tokens(req.system) + estimate_tokens(req.prompt) + schema + 20, req.max_tokens
    if isinstance(req, CompletionRequest):
        return estimate_tokens(req.prompt), req.max_tokens
    return estimate_tokens(req.prompt), 1


@dataclass(frozen=True)
class Price:
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


# (pattern, input, output) — most specific first
_TABLE: list[tuple[str, float, float]] = [
    ("anthropic/claude-opus-4-5*", 5.0, 25.0),
    ("anthropic/claude-opus-4*", 15.0, 75.0),
    ("anthropic/claude-sonnet-4*", 3.0, 15.0),
    ("anthropic/claude-3-7-sonnet*", 3.0, 15.0),
    ("anthropic/claude-haiku-4*", 1.0, 5.0),
    ("anthropic/claude-3-5-haiku*", 0.8, 4.0),
    ("openai/gpt-5-nano*", 0.05, 0.4),
    ("openai/gpt-5-mini*", 0.25, 2.0),
    ("openai/gpt-5*", 1.25, 10.0),
    ("openai/gpt-4.1-nano*", 0.1, 0.4),
    ("openai/gpt-4.1-mini*", 0.4, 1.6),
    ("openai/gpt-4.1*", 2.0, 8.0),
    ("openai/gpt-4o-mini*", 0.15, 0.6),
    ("openai/gpt-4o*", 2.5, 10.0),
    ("openai/o4-mini*", 1.1, 4.4),
    ("openai/o3*", 2.0, 8.0),
    ("openai/text-embedding-3-small", 0.02, 0.0),
    ("openai/text-embedding-3-large", 0.13, 0.0),
]
_OPENAI_CACHE_READ: list[tuple[str, float]] = [("openai/gpt-5*", 0.1), ("openai/gpt-4.1*", 0.25), ("openai/o*", 0.25)]
"""Cached input as a share of the input price (OpenAI's list prices; gpt-4o and others: 0.5)."""
_FREE = Price(0.0, 0.0, source="free")


def price_for(label: str) -> Price | None:
    """The price of a model name as users type it, or None when mwe does not know it."""
    from .config import model_config

    conf = model_config(label)
    provider = label.split("/", 1)[0]
    base: Price | None = None
    if provider in ("local", "fake", "openai-compatible"):
        base = _FREE
    else:
        for pattern, i, o in _TABLE:
            if fnmatch.fnmatchcase(label, pattern):
                # OpenAI bills cached input at a discount that depends on the model family and does
                # not charge for writing the cache.
                read = next((r for p, r in _OPENAI_CACHE_READ if fnmatch.fnmatchcase(label, p)), 0.5)
                base = Price(i, o, cache_write=1.0, cache_read=read) if provider == "openai" else Price(i, o)
                break
    if "input_price" in conf or "output_price" in conf:
        b = base or Price(0.0, 0.0)
        return Price(
            float(conf.get("input_price", b.input)),
            float(conf.get("output_price", b.output)),
            float(conf.get("cache_write", b.cache_write)),
            float(conf.get("cache_read", b.cache_read)),
            float(conf.get("batch_discount", b.batch_discount)),
            source="config",
        )
    return base


@dataclass
class StageUsage:
    """One stage's line in the ledger. `cache_hits` were answered from mwe's response cache (free;
    `saved_usd` is what they cost when first bought); prompt-cache tokens are the provider's."""

    requests: int = 0
    cache_hits: int = 0
    cache_writes: int = 0
    sent: int = 0
    errors: int = 0
    invalid: int = 0
    """Answers received and paid for that did not fit the schema (cached; parse rejections)."""
    batch_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    prompt_cache_read_tokens: int = 0
    prompt_cache_write_tokens: int = 0
    cost_usd: float = 0.0
    saved_usd: float = 0.0

    def add_paid(self, c: Completion, price: Price | None) -> None:
        self.sent += 1
        self.errors += c.failed
        self.invalid += c.invalid
        self.batch_requests += c.batch
        self.input_tokens += c.input_tokens
        self.output_tokens += c.output_tokens
        self.prompt_cache_read_tokens += c.cache_read_tokens
        self.prompt_cache_write_tokens += c.cache_write_tokens
        if price is not None:
            self.cost_usd += price.cost(c)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["cost_usd"] = round(self.cost_usd, 6)
        d["saved_usd"] = round(self.saved_usd, 6)
        return d


class CostGuard:
    """Shared by every engine of a run: money spent, money reserved by requests in flight, and the
    limit. A request is refused (CostLimitReached) when its worst case would pass the limit."""

    def __init__(self, max_cost: float | None) -> None:
        self.max_cost = max_cost
        self.spent = 0.0
        self.reserved = 0.0

    def reserve(self, amount: float) -> None:
        if self.max_cost is not None and self.spent + self.reserved + amount > self.max_cost + 1e-12:
            raise CostLimitReached(
                f"stopping before passing --max-cost ${self.max_cost:.4f}: spent ${self.spent:.4f}, "
                f"${self.reserved:.4f} in flight, next request up to ${amount:.4f}. Nothing was published; "
                "answers received are cached, so re-running with a higher --max-cost pays only for the rest"
            )
        self.reserved += amount

    def settle(self, reserved: float, actual: float) -> None:
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += actual
