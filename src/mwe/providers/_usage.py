"""Token estimates of requests and the ledger line of a stage: what the API providers need to
reserve rate-limit allowance and to account for requests they make for themselves.

They live beside the providers (not in mwe.costs, which builds on them) so that no provider
imports the cost guard that sits above it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .base import ChatRequest, ClassifyRequest, Completion, CompletionRequest, EmbedRequest, Price, schema_json

__all__ = ["StageUsage", "estimate_tokens", "request_size"]


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
