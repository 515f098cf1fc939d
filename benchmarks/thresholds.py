"""How each embedder's default dedup threshold was chosen: rewordings vs unrelated same-topic pairs.

Rewordings are the 30 hand-written pairs in benchmarks/data/rewordings.jsonl (an item and the
same item reworded, as a generator repeats itself). Unrelated pairs are 5,000 random pairs of
statements from the same anthropics/evals persona file (same topic, different items: the hard
case). The default threshold is the lowest cosine, in steps of 0.05, at which none of the
unrelated pairs would be called a duplicate (dropping distinct items costs data, and a dataset is
deduplicated at every build); the script prints it with the share of rewordings caught there and
the looser threshold at which 0.2 % of unrelated pairs would go.

    python benchmarks/thresholds.py [--embedder tfidf ...] [--data PATH/TO/anthropic-evals/persona]

The unrelated pairs need the persona/ folder of a copy of anthropics/evals (CC-BY-4.0), which the
repository does not ship: by default shared/data/anthropic-evals/persona beside the repository's
folder; without it the script says so and stops.

API embedders (`openai/...`) need a key and spend a few cents; they were not measured here.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

from mwe.embedders import default_threshold, get_embedder

HERE = Path(__file__).parent


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", action="append", default=None)
    ap.add_argument("--data", default=str(HERE.parents[1] / "shared/data/anthropic-evals/persona"))
    ap.add_argument("--pairs", type=int, default=5000)
    args = ap.parse_args()
    rewordings = [json.loads(line) for line in (HERE / "data/rewordings.jsonl").open(encoding="utf-8")]
    rng = random.Random(0)
    files = sorted(Path(args.data).glob("*.jsonl"))
    if not files:
        sys.exit(f"skipped: no anthropics/evals persona files (*.jsonl) in {args.data}; pass --data DIR")
    unrelated: list[tuple[str, str]] = []
    while len(unrelated) < args.pairs:
        rows = [json.loads(line)["statement"] for line in rng.choice(files).open(encoding="utf-8")]
        a, b = rng.sample(rows, 2)
        if a.strip().lower() != b.strip().lower():
            unrelated.append((a, b))
    for name in args.embedder or ["tfidf", "tfidf-char", "tfidf-svd"]:
        texts = [t for r in rewordings for t in (r["a"], r["b"])] + [t for pair in unrelated for t in pair]
        x = get_embedder(name).fit(texts)  # rows 2k and 2k+1 are a pair
        pairwise = x[0::2].multiply(x[1::2]) if not isinstance(x, np.ndarray) else x[0::2] * x[1::2]
        sims = np.asarray(pairwise.sum(axis=1)).ravel()
        para, other = sims[: len(rewordings)], sims[len(rewordings) :]
        steps = np.round(np.arange(0.05, 1.0001, 0.05), 2)
        chosen = next(t for t in steps if (other >= t).sum() == 0)
        loose = next(t for t in steps if (other >= t).mean() <= 0.002)
        print(
            f"{name:12} rewordings: median {np.median(para):.3f}, min {para.min():.3f} | unrelated same-topic: "
            f"median {np.median(other):.3f}, max {other.max():.3f} | threshold {chosen:.2f}: "
            f"{(para >= chosen).mean():.0%} of rewordings, no unrelated pair | at {loose:.2f}: "
            f"{(para >= loose).mean():.0%} of rewordings, {(other >= loose).mean():.2%} of unrelated "
            f"| mwe default {default_threshold(name):.2f}"
        )


if __name__ == "__main__":
    main()
