"""Runs provider requests through the response cache, the cost guard and the per-stage ledger.

The pipeline talks to the engine, never to a provider directly, so caching, accounting and
batching happen in one place whatever the model. Each answer is cached the moment it lands (the
provider reports it through `on_result`), so a kill loses only the requests in flight and a
re-run pays for nothing already received. Identical requests in one call are sent once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any, TypeVar

from ._refusal import looks_like_refusal
from .cache import Cache
from .costs import CostGuard, StageUsage, price_for, request_size
from .errors import CostLimitReached, ProviderError, UsageError
from .providers.base import (
    ChatRequest,
    ClassifyRequest,
    Completion,
    CompletionRequest,
    EmbedRequest,
    OnResult,
    Progress,
    Provider,
    embed_key,
)

__all__ = ["Engine"]

_log = logging.getLogger("mwe.engine")
R = TypeVar("R", CompletionRequest, ClassifyRequest, ChatRequest, EmbedRequest)
T = TypeVar("T")
Request = CompletionRequest | ClassifyRequest | ChatRequest | EmbedRequest


class Engine:
    def __init__(
        self,
        provider: Provider,
        cache: Cache | None = None,
        *,
        guard: CostGuard | None = None,
        batch: bool = False,
        poll_s: float | None = None,
    ) -> None:
        self.provider = provider
        self.cache = cache if provider.cacheable else None
        self.price = price_for(provider.label)
        self.guard = guard or CostGuard(None)
        if self.guard.max_cost is not None and self.price is None:
            raise UsageError(
                f"--max-cost needs a price for {provider.label}, and mwe does not know one: set input_price "
                "and output_price (USD per million tokens) for it in mwe.toml"
            )
        self.batch = batch and provider.supports_batch
        self.poll_s = poll_s if poll_s is not None else float(os.environ.get("MWE_BATCH_POLL_S", "30"))
        self.usage: dict[str, StageUsage] = {}
        self._keys: dict[str, set[str]] = {}
        self._reserved: dict[str, float] = {}
        if hasattr(provider, "before_send"):
            provider.before_send = self._before_send

    def _key(self, req: Request) -> str:
        return req.key(self.provider.name, self.provider.model)

    def _before_send(self, req: Request) -> None:
        """Reserve the request's worst-case cost; raises CostLimitReached past --max-cost."""
        if self.price is None:
            return
        amount = self.price.bound(*request_size(req), batch=self.batch)
        self.guard.reserve(amount)
        self._reserved[self._key(req)] = amount

    def _run(
        self,
        stage: str,
        requests: Sequence[R],
        send: Callable[[Sequence[R], OnResult], list[T]],
        encode: Callable[[T], dict[str, Any]],
        decode: Callable[[dict[str, Any]], T],
        cacheable: Callable[[T], bool],
        progress: Progress | None,
        batchable: bool = False,
        save: Callable[[R, T], int] | None = None,
    ) -> list[T]:
        """`save(request, answer)`, when given, caches a landed answer in its own way (returning
        the entries written) instead of under the request's key."""
        usage = self.usage.setdefault(stage, StageUsage())
        usage.requests += len(requests)
        keys = [self._key(r) for r in requests]
        self._keys.setdefault(stage, set()).update(keys)
        results: list[T | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        hits = 0
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache else None
            if hit is not None:
                results[i] = decode(hit)
                usage.cache_hits += 1
                if self.price is not None and isinstance(results[i], Completion):
                    usage.saved_usd += self.price.cost(results[i])  # type: ignore[arg-type]
                hits += 1
            else:
                pending.setdefault(key, []).append(i)
        if progress and hits:
            progress(hits)
        todo = list(pending)
        errors: list[str] = []

        def land(j: int, answer: T) -> None:
            key = todo[j]
            if results[pending[key][0]] is not None:
                return
            for i in pending[key]:
                results[i] = answer
            reserved = self._reserved.pop(key, 0.0)
            if isinstance(answer, Completion):
                usage.add_paid(answer, self.price)
                self.guard.settle(reserved, self.price.cost(answer) if self.price else 0.0)
                if answer.failed:
                    errors.append(answer.error or "no answer")
            else:
                usage.sent += 1
                self.guard.settle(reserved, 0.0)
            if self.cache is not None and cacheable(answer):
                if save is not None:
                    usage.cache_writes += save(requests[pending[key][0]], answer)
                else:
                    self.cache.put(key, encode(answer))
                    usage.cache_writes += 1
            if progress:
                progress(len(pending[key]))

        if todo:
            sub = [requests[pending[k][0]] for k in todo]
            if batchable and self.batch:
                self._batch(sub, todo, land)  # type: ignore[arg-type]
            else:
                returned = send(sub, land)
                for j, answer in enumerate(returned):
                    land(j, answer)  # a provider that did not report as it went
        if todo and len(errors) == len(todo) and len(todo) >= 2:
            distinct = list(dict.fromkeys(errors))
            listed = "; ".join(f"{errors.count(e)}x {e}" for e in distinct[:5])
            more = f"; and {len(distinct) - 5} other errors" if len(distinct) > 5 else ""
            raise ProviderError(
                f"{self.provider.label}: all {len(todo)} {stage} requests failed, so the run stopped: {listed}{more}"
            )
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise ProviderError(f"{self.provider.label}: {len(missing)} {stage} requests got no answer")
        return [r for r in results if r is not None]

    def _batch(self, requests: Sequence[ChatRequest], keys: list[str], land: Callable[[int, Completion], None]) -> None:
        """Send through the provider's batch API. Batch ids are stored in the cache database before
        polling starts, so a killed run finds its batch again and polls instead of resubmitting."""
        provider: Any = self.provider
        label = provider.label
        index = {k: j for j, k in enumerate(keys)}
        jobs: list[str] = []
        covered: set[str] = set()
        for batch_id, batch_keys in self.cache.open_batches(label) if self.cache else []:
            if index.keys() & set(batch_keys):
                jobs.append(batch_id)
                covered |= set(batch_keys)
        held_back: CostLimitReached | None = None
        new: list[int] = []
        for j, key in enumerate(keys):
            if key in covered:
                continue
            try:
                self._before_send(requests[j])
            except CostLimitReached as exc:
                held_back = exc
                break
            new.append(j)
        if new:
            ids = [keys[j] for j in new]
            batch_id = provider.submit_batch([requests[j] for j in new], ids)
            if self.cache is not None:
                self.cache.add_batch(batch_id, label, ids)
            _log.info("%s: submitted batch %s with %d requests", label, batch_id, len(ids))
            jobs.append(batch_id)
        schemas = {k: requests[j].schema for k, j in index.items()}
        for batch_id in jobs:
            while not provider.batch_done(batch_id):
                time.sleep(self.poll_s)
            for key, answer in provider.batch_results(batch_id, schemas).items():
                if key in index:
                    land(index[key], answer)
            if self.cache is not None:
                self.cache.close_batch(batch_id)
        if held_back is not None:
            raise held_back
        sent = covered | {keys[j] for j in new}
        for j, key in enumerate(keys):
            if key in sent:
                land(j, Completion("", error="the batch ended without an answer for this request", batch=True))

    def complete(
        self, stage: str, requests: Sequence[CompletionRequest], progress: Progress | None = None
    ) -> list[Completion]:
        return self._run(
            stage,
            requests,
            self.provider.complete,
            Completion.to_json,
            Completion.from_json,
            lambda c: not c.failed and (c.invalid or (bool(c.text.strip()) and not looks_like_refusal(c.text))),
            progress,
        )

    def structured(
        self, stage: str, requests: Sequence[ChatRequest], progress: Progress | None = None
    ) -> list[Completion]:
        """Answers validated against each request's schema. An answer that does not fit is asked
        again once, with what was wrong, as a request of its own: both are cached as they land,
        so a run killed between them pays for neither again."""

        def ask(reqs: Sequence[ChatRequest], bar: Progress | None) -> list[Completion]:
            return self._run(
                stage,
                reqs,
                self.provider.structured,
                Completion.to_json,
                Completion.from_json,
                lambda c: not c.failed and (c.data is not None or (c.invalid and not looks_like_refusal(c.text))),
                bar,
                batchable=True,
            )

        answers = ask(requests, progress)
        redo = [i for i, a in enumerate(answers) if a.invalid]
        if redo:
            again = ask([requests[i].reask(answers[i].text, answers[i].error or "") for i in redo], None)
            for i, answer in zip(redo, again, strict=True):
                if answer.invalid:
                    answer = replace(answer, error=f"{answer.error} (after one re-ask)")
                answers[i] = answer
        return answers

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

    def embed(self, stage: str, texts: Sequence[str], chunk: int = 128, progress: Progress | None = None) -> Any:
        """Unit vectors of `texts` (a float32 array), each text's vector cached on its own as its
        chunk lands, so a later round or build, or a re-run after a kill, pays only for texts it
        has not embedded before. Misses go out in chunks of `chunk` texts per request, through the
        cost guard and the retry layer."""
        import numpy as np

        def key(text: str) -> str:
            return embed_key(self.provider.name, self.provider.model, text)

        def save(req: EmbedRequest, answer: Completion) -> int:
            assert self.cache is not None and answer.data is not None
            for text, vector in zip(req.texts, answer.data["vectors"], strict=True):
                self.cache.put(key(text), {"vector": vector})
            return len(req.texts)

        vectors: dict[str, list[float]] = {}
        for text in dict.fromkeys(texts):
            hit = self.cache.get(key(text)) if self.cache else None
            if hit is not None:
                vectors[text] = hit["vector"]
        self.usage.setdefault(stage, StageUsage()).cache_hits += sum(t in vectors for t in texts)
        missing = [t for t in dict.fromkeys(texts) if t not in vectors]
        requests = [EmbedRequest(tuple(missing[i : i + chunk])) for i in range(0, len(missing), chunk)]
        answers = self._run(
            stage,
            requests,
            self.provider.embed,
            Completion.to_json,
            Completion.from_json,
            lambda c: not c.error and c.data is not None,
            progress,
            save=save,
        )
        for req, answer in zip(requests, answers, strict=True):
            if answer.error or answer.data is None:
                raise ProviderError(f"{self.provider.label}: embeddings failed: {answer.error}")
            vectors.update(zip(req.texts, answer.data["vectors"], strict=True))
        return np.asarray([vectors[t] for t in texts], dtype=np.float32).reshape(len(texts), -1)

    def prompts_hash(self) -> dict[str, str]:
        """Per stage, one SHA-256 over the sorted cache keys of every request asked (a key hashes
        provider, model, prompt, parameters, schema and sample), so two builds with equal hashes
        asked exactly the same things, whatever order the answers came in."""
        return {
            stage: hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest() for stage, keys in self._keys.items()
        }

    def ledger(self) -> dict[str, dict[str, Any]]:
        out = {stage: u.to_json() for stage, u in self.usage.items()}
        overhead = getattr(self.provider, "overhead", None)
        if isinstance(overhead, StageUsage) and overhead.sent:
            out["probe"] = overhead.to_json()
        return out
