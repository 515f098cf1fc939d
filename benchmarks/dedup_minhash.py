"""mwe's default near-duplicate pass against datasketch MinHash LSH on the 114,686 persona
statements of anthropics/evals (CC-BY-4.0), in the same run (issue 7).

- MinHash: word bigrams, 128 permutations, `MinHash.bulk`, an LSH index at Jaccard 0.8, every
  statement queried, candidates kept when their estimated Jaccard is >= 0.8 (the usual
  verification step; raw LSH candidates are printed too).
- mwe: the default `tfidf` embedder and `mwe.filters.dedup.near_pairs` at the default threshold
  (exact prefix-filtered search, so no pair above the threshold is missed).

Printed: each time, pairs found, the overlap, and the share of the union of both methods' pairs
that mwe finds (goal ≥ 0.95) with mwe's time ÷ MinHash's (goal ≤ 0.5). Needs the dev extra
(datasketch) and the persona/ folder of a copy of anthropics/evals, which the repository does not
ship: by default shared/data/anthropic-evals/persona beside the repository's folder; without it
the script says so and stops.

    python benchmarks/dedup_minhash.py [--data PATH/TO/anthropic-evals/persona]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import time
from pathlib import Path

from mwe.embedders import default_threshold, get_embedder
from mwe.filters.dedup import near_pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=str(Path(__file__).parents[2] / "shared/data/anthropic-evals/persona"))
    ap.add_argument("--threshold", type=float, action="append", help="mwe thresholds to time (default: the default)")
    args = ap.parse_args()
    if not any(Path(args.data).glob("*.jsonl")):
        sys.exit(f"skipped: no anthropics/evals persona files (*.jsonl) in {args.data}; pass --data DIR")
    texts = [json.loads(line)["statement"] for f in sorted(Path(args.data).glob("*.jsonl")) for line in f.open()]
    print(f"{len(texts)} statements")

    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    grams = []
    for s in texts:
        w = re.findall(r"\w+", s.lower())
        grams.append([f"{a} {b}".encode() for a, b in itertools.pairwise(w)] or [x.encode() for x in w])
    sigs = MinHash.bulk(grams, num_perm=128)
    lsh = MinHashLSH(threshold=0.8, num_perm=128)
    with lsh.insertion_session() as session:
        for i, m in enumerate(sigs):
            session.insert(i, m)
    raw: set[tuple[int, int]] = set()
    for i, m in enumerate(sigs):
        raw.update((i, j) for j in lsh.query(m) if j > i)
    minhash = {(i, j) for i, j in raw if sigs[i].jaccard(sigs[j]) >= 0.8}
    t_minhash = time.perf_counter() - t0

    print(
        f"MinHash LSH: {t_minhash:.1f} s, {len(raw)} LSH candidates, {len(minhash)} pairs at estimated Jaccard >= 0.8"
    )
    for threshold in args.threshold or [default_threshold("tfidf")]:
        t0 = time.perf_counter()
        ours = {(i, j) for i, j, _ in near_pairs(get_embedder("tfidf").fit(texts), threshold)}
        t_mwe = time.perf_counter() - t0
        union = ours | minhash
        print(f"mwe tfidf @ {threshold}: {t_mwe:.1f} s, {len(ours)} pairs")
        print(f"  overlap {len(ours & minhash)}; only MinHash {len(minhash - ours)}; only mwe {len(ours - minhash)}")
        print(
            f"  mwe finds {len(ours) / len(union):.3f} of the union (goal >= 0.95); "
            f"time ratio mwe/MinHash {t_mwe / t_minhash:.2f} (goal <= 0.5)"
        )


if __name__ == "__main__":
    main()
