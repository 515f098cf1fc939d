"""How many requests to keep in flight, learnt from the server's latency (additive increase,
multiplicative decrease, as TCP and Netflix's concurrency-limits do).

A single-slot server (llama-cpp-python's, a small Ollama) answers N queued requests in about N
times the time of one, so a fixed concurrency of 8 only queues requests past their timeout while
the server keeps generating for clients that hung up. A parallel server (vLLM, a hosted API)
answers N requests in about the time of one. The limiter tells the two apart by the latency per
unit of work (output tokens plus a tenth of the input tokens, since prompt evaluation is far
cheaper per token than decoding): when it grows well past the best seen, requests are queueing
inside the server, so the limit shrinks; while it holds, the limit grows back towards the ceiling.
A timeout halves the limit at once.
"""

from __future__ import annotations

import asyncio
from types import TracebackType

__all__ = ["AdaptiveConcurrency"]

GROW_BELOW = 1.4
"""Latency within this factor of the best seen: the server is keeping up, allow one more."""
SHRINK_ABOVE = 1.8
"""Latency past this factor of the best seen: requests queue in the server, allow fewer."""


class AdaptiveConcurrency:
    """An async context manager that admits up to `limit` requests at once and moves the limit
    between 1 and `ceiling` from observed latencies."""

    def __init__(self, ceiling: int, start: int | None = None) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(min(self.ceiling, max(1, start or self.ceiling)))
        self.in_flight = 0
        self.best: float | None = None
        self.lowest = self.limit
        self.highest = self.limit
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:  # made on the loop that uses it
            self._cond = asyncio.Condition()
        return self._cond

    @property
    def allowed(self) -> int:
        return max(1, int(self.limit))

    async def __aenter__(self) -> AdaptiveConcurrency:
        cond = self._condition()
        async with cond:
            await cond.wait_for(lambda: self.in_flight < self.allowed)
            self.in_flight += 1
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        cond = self._condition()
        async with cond:
            self.in_flight -= 1
            cond.notify_all()

    def _set(self, limit: float) -> None:
        self.limit = min(float(self.ceiling), max(1.0, limit))
        self.lowest = min(self.lowest, self.limit)
        self.highest = max(self.highest, self.limit)

    def observe(self, seconds: float, input_tokens: int, output_tokens: int) -> None:
        """One answer took `seconds` from send to landing."""
        work = output_tokens + input_tokens / 10 + 1
        per = seconds / work
        if self.best is None or per < self.best:
            self.best = per
        ratio = per / self.best if self.best > 0 else 1.0
        if ratio > SHRINK_ABOVE:
            self._set(self.limit * 0.7)
        elif ratio < GROW_BELOW and self.in_flight >= self.allowed:
            self._set(self.limit + 0.5)  # half a request per answer that kept pace: doubles in ~2 rounds

    def timed_out(self) -> None:
        self._set(self.limit / 2)

    def describe(self) -> dict[str, int]:
        return {"ceiling": self.ceiling, "now": self.allowed, "lowest": int(self.lowest), "highest": int(self.highest)}
