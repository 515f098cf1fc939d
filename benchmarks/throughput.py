"""Throughput of a build against a rate-limited OpenAI-compatible server on loopback.

The server (tests/loopback.py) answers after 50-500 ms, enforces a requests/min and a
tokens/min limit as token buckets, refuses excess with 429 + retry-after-ms, and reports its
limits in x-ratelimit-* headers, which is all mwe is told: no --rpm is given. The same build runs
at growing concurrency; each run prints requests/min achieved (measured on the server, first to last
answered request) ÷ the server's limit and ÷ the ceiling (the limit plus the server's 1 s burst
allowance over that span), the 429s it refused, tokens per kept item, and then a re-run from
the cache.

    python benchmarks/throughput.py [--n 150] [--rpm 600] [--tpm 2000000]

Goal (issue 4): ≥ 0.95 of the ceiling once the run is rate-bound, throughput growing with
concurrency until then, and 0 requests on the re-run from cache.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loopback import Loopback

import mwe


def run(server: Loopback, n: int, concurrency: int, cache: Path, out: Path) -> dict[str, float]:
    os.environ["MWE_CACHE_DIR"] = str(cache)
    before_req, before_acc = server.model_requests, len(server.accepted)
    t0 = time.monotonic()
    ds = mwe.generate(
        "power-seeking",
        n=n,
        model="openai-compatible/bench",
        out=out,
        base_url=server.url + "/v1",
        concurrency=concurrency,
    )
    wall = time.monotonic() - t0
    accepted = server.accepted[before_acc:]
    span = (accepted[-1] - accepted[0]) if len(accepted) > 1 else wall
    usage = ds.manifest["usage"]
    tokens = sum(u["input_tokens"] + u["output_tokens"] for u in usage.values())
    return {
        "kept": len(ds),
        "wall_s": wall,
        "answered": len(accepted),
        "sent": server.model_requests - before_req,
        "rpm": 60 * (len(accepted) - 1) / span if len(accepted) > 1 else 0.0,
        "span_s": span,
        "tokens_per_item": tokens / max(1, len(ds)),
        "cache_hits": sum(u["cache_hits"] for u in usage.values()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150, help="items per build")
    ap.add_argument("--rpm", type=float, default=600, help="server requests/min limit")
    ap.add_argument("--tpm", type=float, default=2_000_000, help="server tokens/min limit")
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="mwe-throughput-"))
    print(f"server: {args.rpm:.0f} requests/min, {args.tpm:.0f} tokens/min, latency 50-500 ms; build n={args.n}")
    print(
        f"{'concurrency':>11} {'wall s':>7} {'answered':>8} {'429s':>5} {'req/min':>8} {'÷ limit':>7} "
        f"{'÷ ceiling':>9} {'tok/item':>8}"
    )
    last_cache = None
    for c in args.concurrency:
        with Loopback(latency=(0.05, 0.5), rpm=args.rpm, tpm=args.tpm, burst_s=1.0) as server:
            cache = root / f"cache-c{c}"
            r = run(server, args.n, c, cache, root / f"out-c{c}")
            refused = r["sent"] - r["answered"]
            # The most a client could get in the span: the limit plus the server's 1 s burst allowance.
            ceiling = args.rpm * (1 + 1.0 / r["span_s"]) if r["span_s"] else args.rpm
            print(
                f"{c:>11} {r['wall_s']:>7.1f} {r['answered']:>8.0f} {refused:>5.0f} {r['rpm']:>8.1f} "
                f"{r['rpm'] / args.rpm:>7.3f} {r['rpm'] / ceiling:>9.3f} {r['tokens_per_item']:>8.0f}",
                flush=True,
            )
            last_cache = (cache, c)
    assert last_cache is not None
    cache, c = last_cache
    with Loopback(latency=(0.05, 0.5), rpm=args.rpm, tpm=args.tpm) as server:
        r = run(server, args.n, c, cache, root / "out-rerun")
        print(
            f"re-run from cache (concurrency {c}): kept {r['kept']:.0f} in {r['wall_s']:.1f} s, "
            f"requests made: {r['sent']:.0f}, answered from cache: {r['cache_hits']:.0f}"
        )


if __name__ == "__main__":
    main()
