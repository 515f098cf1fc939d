"""Today's embedded decoding before batching, kept for benchmarks/local_throughput.py only.

A verbatim copy of mwe's LocalProvider at commit da6512a (two single-threaded llama.cpp contexts,
one per core, each keeping the KV cache of its last prompt), so the benchmark compares both in
one run on the same machine.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, ClassVar, TypeVar

import numpy as np

from mwe.errors import MissingDependency
from mwe.providers.base import ClassifyRequest, Completion, CompletionRequest, OnResult
from mwe.providers.local import (
    _INSTALL,
    DEFAULT_MODEL,
    LocalProvider,
    _has_amx,
    _plain_weight_buffers,
    _route_llama_logs,
    model_path,
)

R = TypeVar("R")
T = TypeVar("T")


def _logits(llm: Any) -> Any:
    """The last evaluated position's next-token logits, read in place from llama.cpp."""
    import llama_cpp

    return np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm.ctx, -1), shape=(llm.n_vocab(),))


def _next_logits(llm: Any, tokens: list[int]) -> Any:
    """Logits after `tokens`, evaluating only the part past the prefix the context already holds
    (requests that share a few-shot block reuse its KV cache)."""
    cached = llm.input_ids[: llm.n_tokens]
    common = 0
    for a, b in zip(cached, tokens, strict=False):
        if a != b:
            break
        common += 1
    llm.n_tokens = min(common, len(tokens) - 1)  # eval() drops the KV cache past this point
    llm.eval(tokens[llm.n_tokens :])
    return _logits(llm)


class TwoContextProvider(LocalProvider):
    """mwe's embedded decoding before batching (commit da6512a): one single-threaded context per
    core, requests handed to whichever context is free."""

    name: ClassVar[str] = "local"
    supports_logprobs: ClassVar[bool] = True

    def __init__(self, model: str = DEFAULT_MODEL, workers: int | None = None, n_ctx: int = 2048) -> None:
        super().__init__(model)
        self.workers = workers or max(1, min(4, int(os.environ.get("MWE_LOCAL_WORKERS", os.cpu_count() or 1))))
        self.n_ctx = n_ctx
        self._pool: queue.Queue[Any] | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "decoding": "two contexts"}

    def _contexts(self) -> queue.Queue[Any]:
        with self._lock:
            if self._pool is None:
                try:
                    from llama_cpp import Llama
                except ImportError:
                    raise MissingDependency(f"llama-cpp-python is not installed: {_INSTALL}") from None
                _route_llama_logs()
                path = model_path()
                pool: queue.Queue[Any] = queue.Queue()
                with _plain_weight_buffers(_has_amx()):
                    for _ in range(self.workers):
                        pool.put(
                            Llama(
                                model_path=path,
                                n_ctx=self.n_ctx,
                                n_threads=1,
                                n_threads_batch=1,
                                n_batch=256,
                                verbose=False,
                            )
                        )
                self._pool = pool
            return self._pool

    def _map(self, fn: Callable[[Any, R], T], requests: Sequence[R], on_result: OnResult | None) -> list[T]:
        """Run on the worker threads; report each answer on the caller's thread as it lands."""
        pool = self._contexts()

        def one(req: R) -> T:
            llm = pool.get()
            try:
                return fn(llm, req)
            finally:
                pool.put(llm)

        results: list[Any] = [None] * len(requests)
        with ThreadPoolExecutor(max_workers=self.workers) as ex:
            futures = {ex.submit(one, req): i for i, req in enumerate(requests)}
            try:
                for fut in as_completed(futures):
                    i = futures[fut]
                    results[i] = fut.result()
                    if on_result:
                        on_result(i, results[i])
            except BaseException:
                for fut in futures:
                    fut.cancel()
                raise
        return results

    def complete(self, requests: Sequence[CompletionRequest], on_result: OnResult | None = None) -> list[Completion]:
        def one(llm: Any, req: CompletionRequest) -> Completion:
            out = llm.create_completion(
                req.prompt,
                max_tokens=req.max_tokens,
                temperature=req.temperature,
                top_p=0.95,
                top_k=64,
                repeat_penalty=1.1,
                stop=list(req.stop),
                seed=req.seed,
            )
            usage = out.get("usage", {})
            return Completion(
                out["choices"][0]["text"], usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
            )

        return self._map(one, requests, on_result)

    def classify(self, requests: Sequence[ClassifyRequest], on_result: OnResult | None = None) -> list[list[float]]:
        def one(llm: Any, req: ClassifyRequest) -> list[float]:
            logits = _next_logits(llm, llm.tokenize(req.prompt.encode(), add_bos=True, special=False))
            ids = [llm.tokenize(o.encode(), add_bos=False, special=False)[0] for o in req.options]
            chosen = logits[ids].astype(np.float64)
            p = np.exp(chosen - chosen.max())
            return [float(x) for x in p / p.sum()]

        return self._map(one, requests, on_result)

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        while pool is not None and not pool.empty():
            pool.get().close()
