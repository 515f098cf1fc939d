"""Several sequences of the embedded model decoded together in one llama.cpp context.

One context, `threads` threads, up to `sequences` sequences at a time: each llama_decode call
carries the next token of every generating sequence plus pending prompt tokens, so the weights
are read once per step for all of them (matrix-matrix instead of matrix-vector work). A new
prompt copies the KV cells of the longest prefix it shares with any sequence still in the cache
(`llama_memory_seq_cp`, which only tags the cells), so a shared few-shot block is evaluated once.

Results do not depend on which requests share a batch. ggml-cpu picks kernels by shape, and
kernels round differently, so every call is kept on one family of kernels (measured on
llama-cpp-python 0.3.36, bit for bit):
- at least 8 token rows and, when any, 8 output rows per call (the tiled K-quant matmul starts
  at 8 rows; the last layer runs on the output rows only); idle sequences' places are filled
  with padding tokens in a sequence nobody reads;
- at most 63 rows (flash attention tiles from 64 query rows; one row splits the KV cache);
- flash attention, which skips the cells of other sequences, visited in cell order: cells are
  never freed during a session (finished sequences are retagged to a "graveyard" sequence), so
  a sequence's cells always lie in position order whatever else was decoded alongside;
- no repacked ("extra") weight buffers, whose kernels also change with the row count.
The KV cache is cleared when it is full and nothing is running, and before a run that finds it
more than half full.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ProviderError
from ._sampling import REPEAT_LAST, sample

__all__ = ["Decoder", "Job", "Step"]

ROWS = 63
MIN_ROWS = 8
REAL_ROWS = ROWS - (MIN_ROWS - 1)
SHARE_WAIT = 16
"""A prompt waits for a sequence still evaluating a prefix it shares, when that saves at least
this many tokens: the shared part is then evaluated once."""


@dataclass
class Job:
    """One request. `options` set: classify (probabilities over those token ids after the
    prompt). Otherwise generate up to `max_tokens`: sampled (`temperature` > 0, repeat penalty,
    min-p, top-k, top-p, seeded by `seed`) or greedy; `top` > 0 records the log-probabilities of
    the `top` likeliest tokens at each greedy position (raw logits, no penalty)."""

    tokens: list[int]
    max_tokens: int = 0
    temperature: float = 0.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    options: list[int] | None = None
    top: int = 0
    probs: list[float] = field(default_factory=list)
    generated: list[int] = field(default_factory=list)
    text: str = ""
    finish: str = ""
    positions: list[tuple[int, float, list[tuple[int, float]]]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """One llama_decode call, as `Decoder.trace` records it: rows sent (padding included), the
    padding rows among them, output rows read (and padding output rows), the cache cells in use
    before the call, and its seconds. benchmarks/local_steps.py fits a cost per row, per output
    row and per cell in use to these, which says where a build's time goes."""

    rows: int
    padding: int
    outputs: int
    padding_outputs: int
    cells: int
    seconds: float


@dataclass
class _Slot:
    seq: int
    tokens: list[int] = field(default_factory=list)
    cached: int = 0
    job: Job | None = None
    index: int = -1
    raw: bytearray = field(default_factory=bytearray)
    rng: Any = None

    def generating(self) -> bool:
        return self.job is not None and self.cached == len(self.tokens) - 1 and self.cached >= len(self.job.tokens)


def _common(a: Any, b: Any) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    diff = np.flatnonzero(np.asarray(a[:n]) != np.asarray(b[:n]))
    return int(diff[0]) if len(diff) else n


class Decoder:
    """Owns the model and one context; `run` is not re-entrant (the provider holds a lock)."""

    def __init__(self, path: str, threads: int, sequences: int, n_ctx: int, extra_buffers: bool) -> None:
        import llama_cpp as ll

        self.ll = ll
        mp = ll.llama_model_default_params()
        if not extra_buffers and hasattr(mp, "use_extra_bufts"):
            mp.use_extra_bufts = False
        self.model = ll.llama_model_load_from_file(path.encode(), mp)
        if not self.model:
            raise ProviderError(f"cannot load the embedded model from {path}: delete it to have it assembled again")
        cp = ll.llama_context_default_params()
        cp.n_ctx = n_ctx
        cp.n_batch = cp.n_ubatch = ROWS
        cp.n_seq_max = sequences + 2
        cp.n_threads = cp.n_threads_batch = threads
        cp.flash_attn_type = ll.LLAMA_FLASH_ATTN_TYPE_ENABLED
        cp.kv_unified = True
        cp.swa_full = True
        cp.defrag_thold = -1.0
        cp.no_perf = True
        self.ctx = ll.llama_init_from_model(self.model, cp)
        if not self.ctx:
            ll.llama_model_free(self.model)
            raise ProviderError("cannot create a llama.cpp context for the embedded model (out of memory?)")
        self.n_ctx = int(ll.llama_n_ctx(self.ctx))
        self.mem = ll.llama_get_memory(self.ctx)
        self.vocab = ll.llama_model_get_vocab(self.model)
        self.n_vocab = int(ll.llama_vocab_n_tokens(self.vocab))
        self.batch = ll.llama_batch_init(ROWS, 0, 1)
        self.slots = [_Slot(i) for i in range(sequences)]
        self.pad_seq, self.grave = sequences, sequences + 1
        self.used = 0
        self.steps = 0
        self.trace: list[Step] | None = None
        """Set to a list to have every decode step recorded in it (off by default: no cost)."""

    # -- text ---------------------------------------------------------------------------------
    def tokenize(self, text: str, bos: bool = True) -> list[int]:
        data = text.encode("utf-8")
        n = len(data) + 8
        buf = (self.ll.llama_token * n)()
        k = self.ll.llama_tokenize(self.vocab, data, len(data), buf, n, bos, False)
        if k < 0:
            raise ProviderError(f"the embedded model's tokenizer failed on a prompt of {len(data)} bytes")
        return list(buf[:k])

    def piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = self.ll.llama_token_to_piece(self.vocab, token, buf, 64, 0, False)
        if n > 64:
            buf = ctypes.create_string_buffer(n)
            n = self.ll.llama_token_to_piece(self.vocab, token, buf, n, 0, False)
        return buf.raw[: max(0, n)]

    # -- cache bookkeeping --------------------------------------------------------------------
    def _retire(self, seq: int, p0: int) -> None:
        """Hand a sequence's cells from position p0 on to the graveyard: they stay occupied (no
        hole is ever refilled out of order) and the sequence id is free for reuse."""
        self.ll.llama_memory_seq_cp(self.mem, seq, self.grave, p0, -1)
        self.ll.llama_memory_seq_rm(self.mem, seq, p0, -1)

    def _reset(self) -> None:
        self.ll.llama_memory_clear(self.mem, True)
        self.used = 0
        for s in self.slots:
            s.tokens, s.cached = [], 0

    def _need(self, job: Job, common: int) -> int:
        return len(job.tokens) - common + job.max_tokens

    def _committed(self) -> int:
        """Cells the running sequences may still take, padding included (at most MIN_ROWS - 1
        padding rows per step, one step per token still to generate, plus one per prompt end)."""
        active = [s for s in self.slots if s.job is not None]
        left = [
            (s.job.max_tokens - len(s.job.generated), len(s.job.tokens) - min(s.cached, len(s.job.tokens)))
            for s in active
            if s.job
        ]
        own = sum(g + p for g, p in left)
        steps = max((g for g, _ in left), default=0) + len(active) + 1
        return own + (MIN_ROWS - 1) * steps

    def _source(self, job: Job) -> tuple[_Slot | None, int]:
        best, common = None, 0
        for s in self.slots:
            c = _common(job.tokens, s.tokens[: s.cached])
            if c > common:
                best, common = s, c
        return best, min(common, len(job.tokens) - 1)

    def _waits(self, job: Job, common: int) -> bool:
        for s in self.slots:
            if s.job is not None and s.cached < len(s.job.tokens):
                if _common(job.tokens, s.job.tokens) - common >= SHARE_WAIT:
                    return True
        return False

    def _admit(self, pending: deque[int], jobs: Sequence[Job]) -> None:
        for index in list(pending)[: 4 * len(self.slots)]:
            free = [s for s in self.slots if s.job is None]
            if not free:
                return
            job = jobs[index]
            if len(job.tokens) + job.max_tokens + MIN_ROWS * (job.max_tokens + 2) > self.n_ctx:
                raise ProviderError(
                    f"local: a prompt of {len(job.tokens)} tokens plus {job.max_tokens} to generate does not fit "
                    f"the embedded model's cache of {self.n_ctx} cells: shorten the prompt or lower max_tokens"
                )
            src, common = self._source(job)
            if self._waits(job, common):
                continue
            extra = (MIN_ROWS - 1) * (job.max_tokens + 2)
            if self.used + self._committed() + self._need(job, common) + extra > self.n_ctx:
                if any(s.job is not None for s in self.slots):
                    return  # let the running ones finish; then the cache is cleared
                self._reset()
                src, common = None, 0
            target = src if src is not None and src.job is None else min(free, key=lambda s: len(s.tokens))
            if target is src:
                self._retire(target.seq, common)
            else:
                self._retire(target.seq, 0)
                if src is not None and common > 0:
                    self.ll.llama_memory_seq_cp(self.mem, src.seq, target.seq, 0, common)
            target.tokens, target.cached = list(job.tokens), common
            target.job, target.index, target.raw = job, index, bytearray()
            target.rng = np.random.default_rng(job.seed % 2**64)
            pending.remove(index)

    # -- decoding -----------------------------------------------------------------------------
    def _add(self, token: int, pos: int, seq: int, logits: bool) -> int:
        b, i = self.batch, int(self.batch.n_tokens)
        b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, logits
        b.seq_id[i][0] = seq
        b.n_tokens = i + 1
        return i

    def _step(self) -> list[tuple[_Slot, int]]:
        """One llama_decode over every generating sequence and as many prompt tokens as fit;
        returns (slot, batch row) for each sequence whose next-token logits are ready."""
        self.batch.n_tokens = 0
        outputs: list[tuple[_Slot, int]] = []
        for s in self.slots:
            if s.generating():
                outputs.append((s, self._add(s.tokens[-1], s.cached, s.seq, True)))
                s.cached += 1
        budget = REAL_ROWS - self.batch.n_tokens
        for s in self.slots:
            if s.job is None or s.generating() or budget <= 0:
                continue
            take = min(budget, len(s.tokens) - s.cached)
            for p in range(s.cached, s.cached + take):
                last = p == len(s.tokens) - 1
                row = self._add(s.tokens[p], p, s.seq, last)
                if last:
                    outputs.append((s, row))
            s.cached += take
            budget -= take
        real = self.batch.n_tokens
        if real == 0:
            return []
        want_out = MIN_ROWS - len(outputs) if 0 < len(outputs) < MIN_ROWS else 0
        for j in range(max(MIN_ROWS - real, want_out)):
            self._add(0, j, self.pad_seq, j < want_out)
        rows = self.batch.n_tokens
        if self.used + rows > self.n_ctx:
            raise ProviderError("local: the KV cache overflowed (a bug in mwe's batch planning)")
        t0 = time.perf_counter()
        rc = self.ll.llama_decode(self.ctx, self.batch)
        if rc != 0:
            raise ProviderError(f"local: llama_decode failed with code {rc}")
        if self.trace is not None:
            self.trace.append(Step(rows, rows - real, len(outputs), want_out, self.used, time.perf_counter() - t0))
        self.used += rows
        self.steps += 1
        if rows > real:
            self._retire(self.pad_seq, 0)
        return outputs

    def _logits(self, row: int) -> Any:
        ptr = self.ll.llama_get_logits_ith(self.ctx, row)
        return np.ctypeslib.as_array(ptr, shape=(self.n_vocab,))

    def _finish(self, s: _Slot, reason: str, done: Callable[[int, Job], None]) -> None:
        job = s.job
        assert job is not None
        s.tokens = s.tokens[: s.cached]
        if job.options is None and not job.top:
            text = bytes(s.raw).decode("utf-8", "ignore")
            for stop in job.stop:
                k = text.find(stop)
                if k >= 0:
                    text, reason = text[:k], "stop"
            job.text = text
        job.finish = reason
        s.job = None
        done(s.index, job)

    def _advance(self, s: _Slot, logits: Any, done: Callable[[int, Job], None]) -> None:
        job = s.job
        assert job is not None
        if job.options is not None:
            chosen = logits[job.options].astype(np.float64)
            p = np.exp(chosen - chosen.max())
            job.probs = [float(x) for x in p / p.sum()]
            self._finish(s, "stop", done)
            return
        if job.top:
            lp = logits.astype(np.float64)
            lp -= lp.max()
            lp -= np.log(np.exp(lp).sum())
            k = min(job.top, len(lp))
            ids = np.argpartition(-lp, k - 1)[:k]
            ids = ids[np.argsort(-lp[ids], kind="stable")]
            token = int(ids[0])
            if not self.ll.llama_vocab_is_eog(self.vocab, token):
                job.positions.append((token, float(lp[token]), [(int(t), float(lp[t])) for t in ids]))
        else:
            token = sample(logits, s.tokens[-REPEAT_LAST:], job.temperature, s.rng)
        if self.ll.llama_vocab_is_eog(self.vocab, token):
            self._finish(s, "stop", done)
            return
        job.generated.append(token)
        if not job.top:
            before = len(s.raw)
            s.raw += self.piece(token)
            if job.stop:
                text = bytes(s.raw).decode("utf-8", "ignore")
                start = max(0, len(bytes(s.raw[:before]).decode("utf-8", "ignore")) - max(map(len, job.stop)))
                if any(text.find(stop, start) >= 0 for stop in job.stop):
                    self._finish(s, "stop", done)
                    return
        if len(job.generated) >= job.max_tokens:
            self._finish(s, "length", done)
            return
        s.tokens.append(token)

    def run(self, jobs: Sequence[Job], done: Callable[[int, Job], None]) -> None:
        """Decode every job; `done(index, job)` is called as each one finishes."""
        pending = deque(range(len(jobs)))
        if self.used > self.n_ctx // 2:
            # A full cache mid-run makes new prompts wait for every running sequence to finish
            # before the clear (a persona round took twice its time so); a fresh run rarely reuses
            # more than one prompt's prefix from the last one, which is cheap to evaluate again.
            self._reset()
        for index, job in enumerate(jobs):
            if not job.tokens:
                raise ProviderError("local: an empty prompt")
            if job.options is None and job.max_tokens <= 0:
                job.finish = "length"
                done(index, job)
                pending.remove(index)
        try:
            while pending or any(s.job is not None for s in self.slots):
                self._admit(pending, jobs)
                outputs = self._step()
                if not outputs and not any(s.job is not None for s in self.slots) and pending:
                    if self.used == 0:
                        raise ProviderError("local: no request could be scheduled (a bug in mwe's batch planning)")
                    self._reset()
                for s, row in outputs:
                    self._advance(s, self._logits(row), done)
        except BaseException:
            for s in self.slots:  # an interrupted run leaves no half-finished sequence behind
                s.job = None
            self._reset()
            raise

    def close(self) -> None:
        ll = self.ll
        ll.llama_batch_free(self.batch)
        ll.llama_free(self.ctx)
        ll.llama_model_free(self.model)
