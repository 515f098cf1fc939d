"""Runs provider requests through the cache and keeps the token ledger per stage.

The pipeline talks to the engine, never to a provider directly, so caching and accounting happen
in one place whatever the model.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from .cache import Cache
from .providers.base import ClassifyRequest, Completion, CompletionRequest, Progress, Provider

__all__ = ["Engine", "StageUsage"]

R = TypeVar("R", CompletionRequest, ClassifyRequest)
CHUNK = 8
"""Requests sent to a provider at once: enough to keep its workers busy, few enough to lose little."""
T = TypeVar("T")


@dataclass
class StageUsage:
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0


class Engine:
    def __init__(self, provider: Provider, cache: Cache | None = None) -> None:
        self.provider = provider
        self.cache = cache if provider.cacheable else None
        self.usage: dict[str, StageUsage] = {}

    def _run(
        self,
        stage: str,
        requests: Sequence[R],
        send: Callable[[Sequence[R], Progress | None], list[T]],
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[dict[str, Any]], T],
        cacheable: Callable[[T], bool],
        progress: Progress | None,
    ) -> list[T]:
        usage = self.usage.setdefault(stage, StageUsage())
        keys = [r.key(self.provider.name, self.provider.model) for r in requests]
        results: list[T | None] = [None] * len(requests)
        missing: list[int] = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                results[i] = decode(hit)
                usage.cache_hits += 1
            else:
                missing.append(i)
        if progress and len(requests) > len(missing):
            progress(len(requests) - len(missing))
        # Send in chunks and cache each chunk as it lands: a kill loses at most one chunk's answers.
        for start in range(0, len(missing), CHUNK):
            chunk = missing[start : start + CHUNK]
            answers = send([requests[i] for i in chunk], progress)
            for i, answer in zip(chunk, answers, strict=True):
                results[i] = answer
                if self.cache is not None and cacheable(answer):
                    self.cache.put(keys[i], encode(answer))
        usage.requests += len(requests)
        return [r for r in results if r is not None]

    def complete(
        self, stage: str, requests: Sequence[CompletionRequest], progress: Progress | None = None
    ) -> list[Completion]:
        from .filters.rules import looks_like_refusal

        out = self._run(
            stage,
            requests,
            self.provider.complete,
            lambda c: {"text": c.text, "input_tokens": c.input_tokens, "output_tokens": c.output_tokens},
            lambda d: Completion(d["text"], d["input_tokens"], d["output_tokens"], cached=True),
            lambda c: bool(c.text.strip()) and not looks_like_refusal(c.text),
            progress,
        )
        usage = self.usage[stage]
        for c in out:
            if not c.cached:
                usage.input_tokens += c.input_tokens
                usage.output_tokens += c.output_tokens
        return out

    def classify(
        self, stage: str, requests: Sequence[ClassifyRequest], progress: Progress | None = None
    ) -> list[list[float]]:
        return self._run(
            stage,
            requests,
            self.provider.classify,
            lambda p: {"probs": p},
            lambda d: list(d["probs"]),
            lambda p: True,
            progress,
        )

    def ledger(self) -> dict[str, dict[str, int]]:
        return {stage: asdict(u) for stage, u in self.usage.items()}
