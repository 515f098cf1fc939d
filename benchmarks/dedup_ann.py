"""The faiss path of dedup at 1M vectors: wall time (goal ≤ 5 min on 2 cores) and recall of
injected near-duplicate pairs (goal ≥ 0.95), plus the crossover against exact blocked search.

N unit vectors of dimension D (float32, seeded) with P injected pairs (a copy plus small noise,
cosine about 0.99) go through `mwe.filters.dedup.ann_pairs` (faiss k-means into √(8N) lists,
each vector compared with the members of its 8 nearest lists in dense products). For the
crossover, the exact `self_pairs` and `ann_pairs` run on the first 5k … 50k vectors (ANN_MIN is
where near_pairs switches).

    python benchmarks/dedup_ann.py [--n 1000000] [--dim 384] [--pairs 1000]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from mwe.filters.dedup import ANN_MIN, ann_pairs, self_pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--pairs", type=int, default=1000)
    ap.add_argument("--threshold", type=float, default=0.9)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.dim), dtype=np.float32)
    for i in range(0, args.n, 65536):
        x[i : i + 65536] /= np.linalg.norm(x[i : i + 65536], axis=1, keepdims=True)
    src = rng.choice(args.n, size=2 * args.pairs, replace=False)
    injected = set()
    for a, b in zip(src[::2], src[1::2], strict=True):
        v = x[a] + 0.1 * rng.standard_normal(args.dim).astype(np.float32) / np.sqrt(args.dim)
        x[b] = v / np.linalg.norm(v)
        injected.add((int(min(a, b)), int(max(a, b))))
    for m in (5_000, 10_000, 20_000, 50_000):
        t0 = time.perf_counter()
        self_pairs(x[:m], args.threshold)
        t1 = time.perf_counter()
        ann_pairs(x[:m], args.threshold)
        t2 = time.perf_counter()
        print(f"{m} vectors: exact {t1 - t0:.1f} s, faiss {t2 - t1:.1f} s (near_pairs switches at {ANN_MIN})")
    t0 = time.perf_counter()
    found = {(i, j) for i, j, _ in ann_pairs(x, args.threshold)}
    wall = time.perf_counter() - t0
    recall = len(found & injected) / len(injected)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.n} × {args.dim}: faiss path {wall:.0f} s (goal <= 300 s), recall of {len(injected)} injected pairs "
        f"{recall:.3f} (goal >= 0.95), {len(found)} pairs in all, peak RSS {rss:.0f} MB "
        f"(embeddings {x.nbytes / 2**20:.0f} MB)"
    )


if __name__ == "__main__":
    main()
