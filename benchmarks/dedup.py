"""Exact blocked near-duplicate search on dense embeddings: time against numpy's own block
products, peak memory, and recall of injected pairs (issue 7, first part).

N unit vectors of dimension D (float32, seeded) get P injected near-duplicate pairs (a copy of a
random vector plus small noise, cosine about 0.99); random pairs in 384 dimensions stay below
about 0.3. Each measurement runs in its own process so its peak RSS is its own:

- numpy: `X[i:i+B] @ X.T` for every block of B rows, results thrown away (the floor: the
  products alone);
- mwe: `mwe.filters.dedup.self_pairs(X, threshold, B)`, which also thresholds each block and
  collects the pairs, and multiplies a block only by the rows from its own start on (each pair
  is computed once), so it can be faster than the floor.

Printed: both times and their ratio (goal ≤ 1.2), mwe's peak RSS and how much of it the
interpreter and imports held before any data existed, the rest against the embeddings' size
(goal ≤ 2× the embeddings plus one block), and injected pairs found (goal: all).

    python benchmarks/dedup.py [--n 100000] [--dim 384] [--pairs 500] [--block 256]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def data(n: int, dim: int, pairs: int) -> tuple[Any, set[tuple[int, int]]]:
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, dim), dtype=np.float32)
    for i in range(0, n, 4096):  # in chunks: a whole-array norm would double the peak memory
        x[i : i + 4096] /= np.linalg.norm(x[i : i + 4096], axis=1, keepdims=True)
    idx = rng.permutation(n)[: 2 * pairs]
    injected = set()
    for a, b in zip(idx[:pairs], idx[pairs:], strict=True):
        noisy = x[a] + 0.1 * rng.standard_normal(dim, dtype=np.float32) / np.sqrt(dim)
        x[b] = noisy / np.linalg.norm(noisy)
        injected.add((int(min(a, b)), int(max(a, b))))
    return x, injected


def _rss_now_mb() -> float:
    """Resident memory now (not the peak), from /proc: what the interpreter and imports hold."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize() / 2**20


def child(mode: str, n: int, dim: int, pairs: int, block: int, threshold: float) -> None:
    if mode == "mwe":
        sys.path.insert(0, str(ROOT / "src"))
        from mwe.filters.dedup import self_pairs
    baseline = _rss_now_mb()  # before any data: Python, numpy, and for mwe its imports
    x, injected = data(n, dim, pairs)
    start = time.perf_counter()
    found: set[tuple[int, int]] = set()
    if mode == "numpy":
        for i in range(0, n, block):
            x[i : i + block] @ x.T  # thrown away at once: one block alive at a time
    else:
        found = {(i, j) for i, j, _ in self_pairs(x, threshold, block)}
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mb": rss_mb,
                "baseline_mb": baseline,
                "found": len(found & injected),
                "pairs": len(found),
            }
        )
    )


def measure(mode: str, args: argparse.Namespace) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", mode, "--n", str(args.n), "--dim", str(args.dim)]
    cmd += ["--pairs", str(args.pairs), "--block", str(args.block), "--threshold", str(args.threshold)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--block", type=int, default=256, help="rows per block")
    parser.add_argument("--threshold", type=float, default=0.9)
    parser.add_argument("--child", choices=["numpy", "mwe"])
    args = parser.parse_args()
    if args.child:
        child(args.child, args.n, args.dim, args.pairs, args.block, args.threshold)
        return 0
    base = measure("numpy", args)
    ours = measure("mwe", args)
    emb_mb = args.n * args.dim * 4 / 2**20
    block_mb = args.block * args.n * 4 / 2**20
    print(f"N={args.n} D={args.dim} block={args.block} rows, threshold {args.threshold}, {args.pairs} injected pairs")
    print(f"numpy block products alone: {base['seconds']:.1f} s (peak RSS {base['rss_mb']:.0f} MB)")
    print(f"mwe blocked exact search:   {ours['seconds']:.1f} s (peak RSS {ours['rss_mb']:.0f} MB)")
    ratio = ours["seconds"] / base["seconds"]
    print(f"time ratio mwe / numpy: {ratio:.2f} (goal <= 1.2)")
    limit = 2 * emb_mb + block_mb
    used = ours["rss_mb"] - ours["baseline_mb"]
    print(
        f"peak RSS {ours['rss_mb']:.0f} MB, of which {ours['baseline_mb']:.0f} MB is the interpreter and imports "
        f"before any data; the search's data {used:.0f} MB vs embeddings {emb_mb:.0f} MB: {used / emb_mb:.2f}x; "
        f"goal <= 2x embeddings + one block = {limit:.0f} MB"
    )
    print(f"injected pairs found: {ours['found']} of {args.pairs}; pairs above threshold in all: {ours['pairs']}")
    ok = ratio <= 1.2 and used <= limit and ours["found"] == args.pairs
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
