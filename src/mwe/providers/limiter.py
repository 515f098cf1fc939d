"""Client-side rate limiting for requests/min, input tokens/min and output tokens/min.

Each limit is a token bucket that refills continuously (the model Anthropic and OpenAI describe),
holding at most `burst_s` seconds of allowance (2 s), so a run does not open with a burst the
server would refuse. Output tokens are reserved at `max_tokens` when a request is sent and the unused
part is given back when the answer reports its usage, as Anthropic's own OTPM accounting does.
The limits adapt to what the server says in its rate-limit headers, and a 429's retry-after
pauses every worker, not just the one that was refused.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

__all__ = ["RateLimiter"]


class _Bucket:
    def __init__(self, per_minute: float | None, burst_s: float) -> None:
        self.burst_s = burst_s
        self.per_minute: float | None = None
        self.level = 0.0
        self.stamp = time.monotonic()
        self.set_limit(per_minute)

    @property
    def capacity(self) -> float:
        return max(1.0, (self.per_minute or 0) * self.burst_s / 60)

    def set_limit(self, per_minute: float | None) -> None:
        self._refill()
        first = self.per_minute is None
        self.per_minute = per_minute if per_minute and per_minute > 0 else None
        self.level = self.capacity if first else min(self.level, self.capacity)

    def _refill(self) -> None:
        now = time.monotonic()
        if self.per_minute:
            self.level = min(self.capacity, self.level + (now - self.stamp) * self.per_minute / 60)
        self.stamp = now

    def wait(self, need: float) -> float:
        """Seconds until `need` can be taken (a need above capacity waits for a full bucket)."""
        if not self.per_minute:
            return 0.0
        self._refill()
        short = min(need, self.capacity) - self.level
        return max(0.0, short * 60 / self.per_minute)

    def take(self, amount: float) -> None:
        if self.per_minute:
            self._refill()
            self.level -= amount  # may go negative: later requests wait off the debt

    def give(self, amount: float) -> None:
        if self.per_minute:
            self._refill()
            self.level = min(self.capacity, self.level + amount)

    def cap(self, remaining: float) -> None:
        if self.per_minute:
            self._refill()
            self.level = min(self.level, remaining)


class RateLimiter:
    def __init__(
        self,
        rpm: float | None = None,
        itpm: float | None = None,
        otpm: float | None = None,
        burst_s: float = 2.0,
    ) -> None:
        self.configured = {"rpm": rpm, "itpm": itpm, "otpm": otpm}
        self.buckets = {name: _Bucket(v, burst_s) for name, v in self.configured.items()}
        self.paused_until = 0.0
        self.waited_s = 0.0

    def limits(self) -> dict[str, float | None]:
        return {name: b.per_minute for name, b in self.buckets.items()}

    async def acquire(self, input_tokens: int, output_tokens: int) -> None:
        need = {"rpm": 1.0, "itpm": float(input_tokens), "otpm": float(output_tokens)}
        while True:
            delay = max(self.paused_until - time.monotonic(), *(b.wait(need[n]) for n, b in self.buckets.items()))
            if delay <= 0:
                for name, b in self.buckets.items():
                    b.take(need[name])
                return
            self.waited_s += delay
            await asyncio.sleep(delay)

    def settle(self, reserved_in: int, actual_in: int, reserved_out: int, actual_out: int) -> None:
        """Give back what a request reserved but did not use (or take what it used beyond)."""
        self.buckets["itpm"].give(reserved_in - actual_in)
        self.buckets["otpm"].give(reserved_out - actual_out)

    def pause(self, seconds: float) -> None:
        """A 429: nobody sends until the server's retry-after has passed, and the allowance we
        thought we had is gone."""
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)
        for b in self.buckets.values():
            b.cap(0.0)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Adopt the server's limits (never above what the user set) and its remaining allowance."""
        h = {k.lower(): v for k, v in headers.items()}
        for bucket, names in _HEADERS.items():
            for prefix in names:
                limit = _num(h.get(f"{prefix}-limit") or h.get(_openai(prefix, "limit")))
                remaining = _num(h.get(f"{prefix}-remaining") or h.get(_openai(prefix, "remaining")))
                if limit is None and remaining is None:
                    continue
                b = self.buckets[bucket]
                user = self.configured[bucket]
                if limit is not None and limit > 0:
                    target = min(limit, user) if user else limit
                    if b.per_minute != target:
                        b.set_limit(target)
                if remaining is not None:
                    b.cap(remaining)
                break


# bucket → header prefixes, most specific first (Anthropic names, then OpenAI's)
_HEADERS = {
    "rpm": ("anthropic-ratelimit-requests", "x-ratelimit-requests"),
    "itpm": ("anthropic-ratelimit-input-tokens", "x-ratelimit-tokens"),
    "otpm": ("anthropic-ratelimit-output-tokens",),
}


def _openai(prefix: str, field: str) -> str:
    """OpenAI spells them x-ratelimit-limit-requests / x-ratelimit-remaining-tokens."""
    if prefix.startswith("x-ratelimit-"):
        return f"x-ratelimit-{field}-{prefix.removeprefix('x-ratelimit-')}"
    return f"{prefix}-{field}"


def _num(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
