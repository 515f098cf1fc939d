"""Prices as a run sees them, the per-stage token ledger, and the spending guard behind --max-cost.

List prices and prompt-cache price factors belong to each provider class (`Provider.prices`,
`Provider.price`); this module adds the overrides of mwe.toml (see config.py) on top of them.
Prompt-cache writes and reads and batch requests are priced as multiples of the input price and
of the whole request. The embedded and fake models cost nothing; a self-hosted
`openai-compatible` server is priced at zero unless the config file gives it a price.
"""

from __future__ import annotations

from .config import model_config
from .errors import CostLimitReached
from .providers._registry import provider_class
from .providers._usage import StageUsage, estimate_tokens, request_size
from .providers.base import Price

__all__ = ["CostGuard", "Price", "StageUsage", "estimate_tokens", "price_for", "request_size"]


def price_for(label: str) -> Price | None:
    """The price of a model name as users type it, or None when mwe does not know it."""
    conf = model_config(label)
    cls = provider_class(label)
    name, _, model = label.partition("/")
    base = cls.price(model or name) if cls is not None else None
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
