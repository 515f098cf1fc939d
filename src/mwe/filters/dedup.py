"""Exact and TF-IDF near-duplicate removal that keeps the best-scored member of each group.

distilabel's embedding dedup drops both members of a pair; here candidates are visited best first
(judge score, then arrival order) and one is dropped only when it is too close to one already kept,
so every group keeps exactly its best member and every removal names the item it duplicated.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..items import Candidate, Rejection, normalise

__all__ = ["close_pairs", "dedup", "diversity", "self_pairs", "vectorise"]

BLOCK_ENTRIES = 4_000_000
"""Similarities computed at once: a block has BLOCK_ENTRIES ÷ N rows, so memory stays at one
block of rows against all N, never an N×N matrix."""


def vectorise(texts: list[str]) -> Any:
    """Word (1–2)-gram TF-IDF vectors, L2-normalised rows (a sparse matrix): the `tfidf` embedder."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: `import mwe` stays fast

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1).fit_transform(texts).tocsr()


def close_pairs(x: Any, y: Any, threshold: float) -> list[tuple[int, int, float]]:
    """Every (row of x, row of y, cosine) with cosine >= threshold, computed a block of x's rows at
    a time."""
    rows = max(1, BLOCK_ENTRIES // max(1, y.shape[0]))
    yt = y.T.tocsc()
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, x.shape[0], rows):
        sims = (x[start : start + rows] @ yt).tocoo()
        keep = sims.data >= threshold
        pairs += zip((sims.row[keep] + start).tolist(), sims.col[keep].tolist(), sims.data[keep].tolist(), strict=True)
    return pairs


def self_pairs(x: Any, threshold: float, block_rows: int | None = None) -> list[tuple[int, int, float]]:
    """Every pair (i, j) with i < j and cosine >= threshold among the rows of x (dense, unit
    rows, e.g. embeddings), a block of rows at a time against the rows after the block start, so
    each pair is computed once and memory stays at one block."""
    import numpy as np

    n = x.shape[0]
    rows = block_rows or max(1, BLOCK_ENTRIES // max(1, n))
    pairs: list[tuple[int, int, float]] = []
    for start in range(0, n, rows):
        sims = x[start : start + rows] @ x[start:].T
        for sub in range(0, sims.shape[0], 16):  # threshold 16 rows at a time: a small mask
            r, c = np.nonzero(sims[sub : sub + 16] >= threshold)
            r += sub
            keep = c > r  # the block against itself: each pair once, never an item with itself
            r, c = r[keep], c[keep]
            pairs += zip((r + start).tolist(), (c + start).tolist(), sims[r, c].tolist(), strict=True)
    return pairs


def dedup(
    cands: list[Candidate], threshold: float, examples: list[tuple[str, str]] | None = None
) -> tuple[list[Candidate], list[Rejection]]:
    """Keep the best member of each near-duplicate group. `examples` are the spec's few-shot items
    as (text, stem): a candidate close to one, or with the same stem, is a copy, not a new item."""
    if not cands:
        return [], []
    anchors = [text for text, _ in examples or []]
    stems = {normalise(stem) for _, stem in examples or []}
    order = sorted(range(len(cands)), key=lambda i: (-float(cands[i].scores.get("quality", 0)), i))
    n = len(cands)
    x = vectorise([c.text for c in cands] + anchors)
    near: dict[int, dict[int, float]] = {}
    for i, j, sim in close_pairs(x[:n], x[:n], threshold):
        if i != j:
            near.setdefault(i, {})[j] = sim
    copy_of_example: dict[int, float] = {}
    if anchors:
        for i, _, sim in close_pairs(x[:n], x[n:], threshold):
            copy_of_example[i] = max(sim, copy_of_example.get(i, 0.0))
    exact_anchors = {hashlib.sha256(normalise(t).encode()).hexdigest() for t in anchors}
    seen_exact: dict[str, int] = {}
    kept_at: dict[int, int] = {}  # candidate index -> position in the kept order
    rejected: list[Rejection] = []
    for i in order:
        c = cands[i]
        exact = hashlib.sha256(normalise(c.text).encode()).hexdigest()
        if exact in exact_anchors or normalise(str(c.fields.get("statement", c.question))) in stems:
            rejected.append(Rejection.of(c, "dedup", "copy of a few-shot example", similarity=1.0))
            continue
        if exact in seen_exact:
            rejected.append(_reject(c, cands[seen_exact[exact]], 1.0, "exact duplicate"))
            continue
        if i in copy_of_example:
            reason = f"near copy of a few-shot example (cosine {copy_of_example[i]:.3f})"
            rejected.append(Rejection.of(c, "dedup", reason, similarity=round(copy_of_example[i], 4)))
            continue
        kept_near = [(sim, -kept_at[j], j) for j, sim in near.get(i, {}).items() if j in kept_at]
        if kept_near:
            sim, _, j = max(kept_near)  # the most similar kept item; on a tie, the first kept
            rejected.append(_reject(c, cands[j], sim, "near duplicate"))
            continue
        seen_exact[exact] = i
        kept_at[i] = len(kept_at)
    removed: dict[str, list[str]] = {}
    for r in rejected:
        if "duplicate_of" in r.scores:
            removed.setdefault(r.scores["duplicate_of"], []).append(str(r.id))
    kept = [cands[i] for i in sorted(kept_at)]
    for c in kept:  # the decision travels with the item (lineage is rebuilt: dicts may be shared)
        before = c.lineage.get("dedup", {}).get("removed", [])
        c.lineage = {
            **c.lineage,
            "dedup": {"kept": True, "threshold": threshold, "removed": before + removed.get(c.id, [])},
        }
    return kept, rejected


def _reject(c: Candidate, kept: Candidate, sim: float, kind: str) -> Rejection:
    return Rejection.of(
        c, "dedup", f"{kind} of {kept.id} (cosine {sim:.3f})", similarity=round(sim, 4), duplicate_of=kept.id
    )


def diversity(texts: list[str], facets: list[str], sample: int = 2000, seed: int = 0) -> dict[str, Any]:
    """How varied a set is: mean pairwise cosine distance of the TF-IDF vectors (over a seeded
    sample of `sample` items when larger), the k-means clusters (k ≈ √(N/2)) that hold members and
    the share of the largest, and how evenly the facets are filled (normalised entropy, 1 = even)."""
    import math
    import random
    from collections import Counter

    n = len(texts)
    counts = Counter(facets)
    entropy = -sum(c / n * math.log(c / n) for c in counts.values()) if n else 0.0
    spread = {
        "items_per_facet": dict(counts),
        "evenness": round(entropy / math.log(len(counts)), 4) if len(counts) > 1 else 1.0,
    }
    if n < 2:
        return {"items": n, "mean_pairwise_distance": None, "clusters": None, "facets": spread}
    chosen = sorted(random.Random(seed).sample(range(n), sample)) if n > sample else list(range(n))
    x = vectorise([texts[i] for i in chosen])
    m = len(chosen)
    total = 0.0
    rows = max(1, BLOCK_ENTRIES // m)
    for start in range(0, m, rows):
        total += float((x[start : start + rows] @ x.T).sum())
    mean_sim = (total - m) / (m * (m - 1))  # off-diagonal mean: each row's self-similarity is 1
    from sklearn.cluster import KMeans

    k = max(2, min(m, round(math.sqrt(m / 2))))
    labels = KMeans(n_clusters=k, n_init=3, random_state=seed).fit_predict(x)
    sizes = Counter(int(v) for v in labels)
    return {
        "items": n,
        "sampled": m,
        "mean_pairwise_distance": round(1.0 - mean_sim, 4),
        "clusters": {"k": k, "with_members": len(sizes), "largest_share": round(max(sizes.values()) / m, 4)},
        "facets": spread,
    }
