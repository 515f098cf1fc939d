"""Exact and TF-IDF near-duplicate removal that keeps the best-scored member of each group.

distilabel's embedding dedup drops both members of a pair; here candidates are visited best first
(judge score, then arrival order) and one is dropped only when it is too close to one already kept,
so every group keeps exactly its best member and every removal names the item it duplicated.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..items import Candidate, Rejection, normalise

__all__ = ["dedup", "similarity_matrix"]


def similarity_matrix(texts: list[str]) -> Any:
    """Cosine similarity of word (1–2)-gram TF-IDF vectors (rows are L2-normalised), as a sparse matrix."""
    from sklearn.feature_extraction.text import TfidfVectorizer  # imported here: `import mwe` stays fast

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
    x = vec.fit_transform(texts)
    return (x @ x.T).tocsr()


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
    texts = [c.text for c in cands] + anchors
    sims = similarity_matrix(texts) if len(texts) > 1 else None
    anchor_idx = list(range(len(cands), len(texts)))
    exact_anchors = {hashlib.sha256(normalise(t).encode()).hexdigest() for t in anchors}
    seen_exact: dict[str, int] = {}
    kept_idx: list[int] = []
    rejected: list[Rejection] = []
    for i in order:
        c = cands[i]
        exact = hashlib.sha256(normalise(c.text).encode()).hexdigest()
        if exact in exact_anchors or normalise(str(c.fields.get("statement", c.question))) in stems:
            rejected.append(Rejection.of(c, "dedup", "copy of a few-shot example", similarity=1.0))
            continue
        if exact in seen_exact:
            twin = cands[seen_exact[exact]]
            rejected.append(_reject(c, twin, 1.0, "exact duplicate"))
            continue
        if sims is not None and anchor_idx:
            row = np.asarray(sims[i, anchor_idx].todense()).ravel()
            if float(row.max()) >= threshold:
                reason = f"near copy of a few-shot example (cosine {float(row.max()):.3f})"
                rejected.append(Rejection.of(c, "dedup", reason, similarity=round(float(row.max()), 4)))
                continue
        best_j, best_sim = -1, 0.0
        if sims is not None and kept_idx:
            row = np.asarray(sims[i, kept_idx].todense()).ravel()
            k = int(row.argmax())
            best_j, best_sim = kept_idx[k], float(row[k])
        if best_sim >= threshold:
            rejected.append(_reject(c, cands[best_j], best_sim, "near duplicate"))
            continue
        seen_exact[exact] = i
        kept_idx.append(i)
    removed: dict[str, list[str]] = {}
    for r in rejected:
        if "duplicate_of" in r.scores:
            removed.setdefault(r.scores["duplicate_of"], []).append(str(r.id))
    kept = [cands[i] for i in sorted(kept_idx)]
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
