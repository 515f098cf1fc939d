"""Exact and TF-IDF near-duplicate removal that keeps the best-scored member of each group.

distilabel's embedding dedup drops both members of a pair; here candidates are visited best first
(judge score, then arrival order) and one is dropped only when it is too close to one already kept,
so every group keeps exactly its best member and every removal names the item it duplicated.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ..embedders import Embedder, TfidfEmbedder
from ..items import Candidate, Rejection, normalise

__all__ = ["ann_pairs", "close_pairs", "dedup", "diversity", "near_pairs", "self_pairs", "sparse_pairs", "vectorise"]

BLOCK_ENTRIES = 4_000_000
"""Similarities computed at once: a block has BLOCK_ENTRIES ÷ N rows, so memory stays at one
block of rows against all N, never an N×N matrix."""

ANN_MIN = 20_000
"""Dense sets from this many rows are searched through faiss (if installed) instead of exactly:
benchmarks/dedup_ann.py measures where the index overtakes the blocked search (20k: 0.4 s vs 1.0 s)."""


def vectorise(texts: list[str]) -> Any:
    """`tfidf` vectors of `texts` (L2-normalised sparse rows), fitted on the texts themselves."""
    from ..embedders import TfidfEmbedder

    return TfidfEmbedder("tfidf").fit(texts)


def close_pairs(x: Any, y: Any, threshold: float) -> list[tuple[int, int, float]]:
    """Every (row of x, row of y, cosine) with cosine >= threshold, computed a block of x's rows at
    a time (sparse or dense rows; y is a reference set, usually much larger than x)."""
    import numpy as np
    import scipy.sparse as sp

    rows = max(1, BLOCK_ENTRIES // max(1, y.shape[0]))
    pairs: list[tuple[int, int, float]] = []
    if sp.issparse(x):
        yt = y.T.tocsc()
        for start in range(0, x.shape[0], rows):
            sims = (x[start : start + rows] @ yt).tocoo()
            keep = sims.data >= threshold
            pairs += zip(
                (sims.row[keep] + start).tolist(), sims.col[keep].tolist(), sims.data[keep].tolist(), strict=True
            )
        return pairs
    for start in range(0, x.shape[0], rows):
        block = x[start : start + rows] @ y.T
        r, c = np.nonzero(block >= threshold)
        pairs += zip((r + start).tolist(), c.tolist(), block[r, c].tolist(), strict=True)
        del block  # one block alive at a time
    return pairs


def near_pairs(x: Any, threshold: float) -> list[tuple[int, int, float]]:
    """Every pair (i, j), i < j, of rows of x with cosine >= threshold, by the fastest exact or
    near-exact method for the kind and size of x: sparse rows by prefix filtering, dense rows in
    blocks, and dense rows past ANN_MIN through a faiss IVF index (when faiss is installed)."""
    import scipy.sparse as sp

    if x.shape[0] < 2:
        return []
    if sp.issparse(x):
        return sparse_pairs(x, threshold)
    if x.shape[0] >= ANN_MIN:
        try:
            import faiss  # noqa: F401
        except ImportError:
            pass  # exact search is slower past ANN_MIN, not wrong: pip install 'mwe[scale]' for faiss
        else:
            return ann_pairs(x, threshold)
    return self_pairs(x, threshold)


def sparse_pairs(x: Any, threshold: float) -> list[tuple[int, int, float]]:
    """Exact all-pairs similarity search on sparse unit rows by prefix filtering (Bayardo et al.,
    "Scaling up all pairs similarity search", 2007), in a few sparse products.

    Features are ordered rarest first. Each row's *prefix* is its leading (rare) features up to the
    point where the rest of the row has norm < threshold; for unit rows, cos(x, y) >= t then
    needs x's prefix to meet y, and so does y's prefix x. So candidates are the pairs found from
    both sides of prefix × all products (rare features have short posting lists, so these are
    cheap), bounded by prefix·y >= t − |rest of x|, and only those are verified exactly. Nothing
    is approximated: every pair at or above the threshold is found.
    """
    import numpy as np
    import scipy.sparse as sp

    x = x.tocsr().astype(np.float32)
    n, m = x.shape
    df = np.bincount(x.indices, minlength=m)
    rank = np.empty(m, dtype=np.int64)
    rank[np.argsort(df, kind="stable")] = np.arange(m)
    x = sp.csr_matrix((x.data.copy(), rank[x.indices].astype(np.int32), x.indptr.copy()), shape=(n, m))
    x.sort_indices()
    sq = x.data.astype(np.float64) ** 2
    row_of = np.repeat(np.arange(n), np.diff(x.indptr))
    total = np.bincount(row_of, weights=sq, minlength=n)
    running = np.cumsum(sq)
    before = running - sq - np.concatenate([[0.0], running])[x.indptr[row_of]]
    in_prefix = np.sqrt(np.maximum(total[row_of] - before, 0.0)) >= threshold
    prefix = sp.csr_matrix((np.where(in_prefix, x.data, 0), x.indices.copy(), x.indptr.copy()), shape=(n, m))
    prefix.eliminate_zeros()
    rest = np.sqrt(np.maximum(total - np.bincount(row_of, weights=np.where(in_prefix, sq, 0.0), minlength=n), 0.0))
    xt = x.T.tocsr()
    # a prefix entry of feature f meets every row holding f: blocks are cut so that each
    # product holds about BLOCK_ENTRIES entries, however common the prefixes' features are
    per_row = np.bincount(
        np.repeat(np.arange(n), np.diff(prefix.indptr)), weights=np.diff(xt.indptr)[prefix.indices], minlength=n
    )
    ends = np.cumsum(per_row)
    found = []
    start = 0
    while start < n:
        stop = max(start + 1, int(np.searchsorted(ends, (ends[start - 1] if start else 0) + BLOCK_ENTRIES, "right")))
        prod = (prefix[start:stop] @ xt).tocoo()
        r = prod.row.astype(np.int64) + start
        c = prod.col.astype(np.int64)
        keep = (c != r) & (prod.data >= threshold - rest[r] - 1e-6)
        r, c = r[keep], c[keep]
        found.append(np.minimum(r, c) * n + np.maximum(r, c))
        start = stop
    keys, seen = np.unique(np.concatenate(found), return_counts=True)
    both = keys[seen == 2]  # met from both sides' prefixes, as every pair above the threshold is
    pairs: list[tuple[int, int, float]] = []
    for chunk in range(0, len(both), 1_000_000):
        part = both[chunk : chunk + 1_000_000]
        i, j = part // n, part % n
        sims = np.asarray(x[i].multiply(x[j]).sum(axis=1)).ravel()
        ok = sims >= threshold
        pairs += zip(i[ok].tolist(), j[ok].tolist(), sims[ok].tolist(), strict=True)
    return pairs


def ann_pairs(x: Any, threshold: float, probes: int = 8) -> list[tuple[int, int, float]]:
    """Pairs (i < j) with inner product >= threshold, searched IVF-style: faiss k-means splits the
    rows into about √(probes·N) lists, and each row is compared only with the members of the
    `probes` lists whose centroids are nearest to it. Near-duplicates sit in the same or a
    neighbouring list, so recall is high (benchmarks/dedup_ann.py measures it) for about
    2·probes/√(probes·N) of the exact search's products.

    The comparisons run list by list as dense products (every row probing a list against all its
    members at once) rather than through faiss's per-query range search, which is several times
    slower on few cores; faiss does the clustering and the nearest-centroid search.
    """
    import faiss
    import numpy as np

    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    lists = max(1, min(int(np.sqrt(probes * n)), n // 39))
    probes = min(probes, lists)
    sample = x[np.random.default_rng(0).choice(n, size=min(n, lists * 39), replace=False)]
    kmeans = faiss.Kmeans(d, lists, niter=10, spherical=True, seed=0)
    kmeans.train(sample)
    nearest = np.empty((n, probes), dtype=np.int64)
    for start in range(0, n, 65_536):
        nearest[start : start + 65_536] = kmeans.index.search(x[start : start + 65_536], probes)[1]
    members = _grouped(nearest[:, 0], lists)
    probing = _grouped(nearest.ravel(), lists, np.repeat(np.arange(n), probes))
    codes: list[Any] = []
    sims_found: list[Any] = []
    for own, queries in zip(members, probing, strict=True):
        if not len(own) or not len(queries):
            continue
        block = x[own]
        rows = max(1, BLOCK_ENTRIES // len(own))
        for start in range(0, len(queries), rows):
            q = queries[start : start + rows]
            sims = x[q] @ block.T
            r, c = np.nonzero(sims >= threshold)
            a, b = q[r], own[c]
            keep = a != b
            codes.append(np.minimum(a, b)[keep] * n + np.maximum(a, b)[keep])
            sims_found.append(sims[r, c][keep])
            del sims
    if not codes:
        return []
    code, first = np.unique(np.concatenate(codes), return_index=True)
    sim = np.concatenate(sims_found)[first]
    return list(zip((code // n).tolist(), (code % n).tolist(), sim.tolist(), strict=True))


def _grouped(keys: Any, groups: int, values: Any = None) -> list[Any]:
    """values (default: positions 0..len-1) split by their integer key in [0, groups)."""
    import numpy as np

    order = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[order], np.arange(groups + 1))
    vals = order if values is None else values[order]
    return [vals[bounds[g] : bounds[g + 1]] for g in range(groups)]


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
        del sims  # before the next product is allocated, or two blocks are alive at its peak
    return pairs


def dedup(
    cands: list[Candidate],
    threshold: float,
    examples: list[tuple[str, str]] | None = None,
    embedder: Embedder | None = None,
) -> tuple[list[Candidate], list[Rejection]]:
    """Keep the best member of each near-duplicate group. `examples` are the spec's few-shot items
    as (text, stem): a candidate close to one, or with the same stem, is a copy, not a new item.
    `embedder` defaults to `tfidf`."""
    if not cands:
        return [], []
    anchors = [text for text, _ in examples or []]
    stems = {normalise(stem) for _, stem in examples or []}
    order = sorted(range(len(cands)), key=lambda i: (-float(cands[i].scores.get("quality", 0)), i))
    n = len(cands)
    x = (embedder or TfidfEmbedder("tfidf")).fit([c.text for c in cands] + anchors)
    near: dict[int, dict[int, float]] = {}
    for i, j, sim in near_pairs(x[:n], threshold):
        near.setdefault(i, {})[j] = sim
        near.setdefault(j, {})[i] = sim
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
