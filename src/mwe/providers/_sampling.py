"""Choosing the embedded model's next token from one position's logits, the same way for every
request whatever shares its batch: each request draws from its own seeded generator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["REPEAT_LAST", "sample"]

TOP_K = 64
TOP_P = 0.95
MIN_P_LOG = math.log(0.05)
REPEAT_PENALTY = 1.1
REPEAT_LAST = 64


def sample(logits: Any, history: Sequence[int], temperature: float, rng: Any) -> int:
    """The next token: repeat penalty over the last 64 tokens, then greedy at temperature 0, else
    min-p 0.05, top-k 64, top-p 0.95 and temperature, drawn with the request's own generator."""
    x = np.array(logits, dtype=np.float32)
    if history:
        ids = np.unique(np.asarray(history[-REPEAT_LAST:], dtype=np.int64))
        v = x[ids]
        x[ids] = np.where(v > 0, v / REPEAT_PENALTY, v * REPEAT_PENALTY)
    if temperature <= 0:
        return int(x.argmax())
    top = float(x.max())
    cand = np.flatnonzero(x >= top + MIN_P_LOG)
    v = x[cand].astype(np.float64)
    order = np.argsort(-v, kind="stable")[:TOP_K]
    cand, v = cand[order], v[order]
    p = np.exp(v - v[0])
    p /= p.sum()
    keep = int(np.searchsorted(np.cumsum(p), TOP_P)) + 1
    cand, v = cand[:keep], v[:keep]
    w = np.cumsum(np.exp((v - v[0]) / temperature))
    j = int(np.searchsorted(w, rng.random() * w[-1], side="right"))
    return int(cand[min(j, len(cand) - 1)])
