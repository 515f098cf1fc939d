"""Embedded-model speed: the two-context decoding mwe had before (benchmarks/_two_contexts.py)
against the batched decoder, side by side in one run.

Part 1 sends the same A/B-question generation requests (the mcq generator's real prompts for
power-seeking, 200 tokens at most each) to both, alternating which goes first in each round
(other processes share the cores, so each round's two figures are measured back to back):
generated tokens/s, and items/s (completions that parse into an A/B item). Part 2 times the
quick start, `mwe build power-seeking --n 20` on a fresh cache, once with each, with the
manifest's time per stage. Part 3 runs `mwe eval --model local` (Inspect, log-probabilities, no
Inspect cache) on the batched side's dataset twice: one call at a time, as before the embedded
Inspect model shared its decoder between concurrent calls, and with its default connections;
the two runs' figures must agree.

    python benchmarks/local_throughput.py [--requests 32] [--rounds 2] [--n 20] [--skip-build] [--skip-eval]

Goals (issue 21): batched ≥ 1.8× the two-context tokens/s on 2 cores; quick start ≤ 35 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _two_contexts import TwoContextProvider

from mwe.build import BuildOptions, build
from mwe.dataset import Dataset
from mwe.generators import get_generator
from mwe.providers.base import CompletionRequest, Provider
from mwe.providers.local import LocalProvider
from mwe.spec import find_spec, load_spec
from mwe.store import Store


def cpu() -> str:
    flags: set[str] = set()
    name = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
    simd = [f for f in ("avx2", "avx512f", "avx512_vnni", "amx_int8") if f in flags]
    return f"{name}, {os.cpu_count()} cores, {' '.join(simd)}"


def workload(count: int, seed: int) -> tuple[list[CompletionRequest], list[str]]:
    spec = load_spec(find_spec("power-seeking"))
    gen = get_generator("mcq")(spec, 0, chat=False)
    facets = [f.name for f in spec.facets]
    requests, owners = [], []
    for i in range(count):
        facet = facets[i % len(facets)]
        (req,) = gen.requests(facet, [seed * 1000 + i], spec.defaults.temperature)
        requests.append(req)
        owners.append(facet)
    return requests, owners


def decode(provider: Provider, requests: list[CompletionRequest], owners: list[str]) -> dict[str, float]:
    spec = load_spec(find_spec("power-seeking"))
    gen = get_generator("mcq")(spec, 0, chat=False)
    t0 = time.monotonic()
    out = provider.complete(requests)
    wall = time.monotonic() - t0
    items = sum(len(gen.parse(f, c, {"model": "bench"})[0]) for f, c in zip(owners, out, strict=True))
    tokens = sum(c.output_tokens for c in out)
    return {"wall": wall, "tokens": tokens, "tok_s": tokens / wall, "items_s": items / wall, "items": items}


def quick_start(provider: Provider, n: int, root: Path, seed: int = 0) -> tuple[float, Dataset]:
    """`mwe build power-seeking --n N` on a fresh cache under `root`: (seconds, dataset)."""
    os.environ["MWE_CACHE_DIR"] = str(root / "cache")
    spec = load_spec(find_spec("power-seeking"))
    t0 = time.monotonic()
    ds = build(spec, BuildOptions(n=n, seed=seed), Store(root / "out"), providers=(provider, provider))
    return time.monotonic() - t0, ds


def eval_side_by_side(ds: Dataset, root: Path) -> None:
    """`mwe eval --model local` one call at a time, then with the model's own connections."""
    from mwe import evaluate
    from mwe._inspect_model import MweModel

    print()
    print(f"| mwe eval --model local, {len(ds)} items (Inspect, log-probabilities) | wall s | figures |")
    print("| --- | ---: | --- |")
    own = MweModel.max_connections
    figures = []
    for name, connections in (("one call at a time (before)", 1), ("concurrent calls share batches", 0)):
        if connections:
            MweModel.max_connections = lambda self, c=connections: c  # type: ignore[method-assign,misc]
        try:
            t0 = time.monotonic()
            _, summaries = evaluate.run(ds, "local", cache=False, log_dir=root / name[:3], display="none")
            wall = time.monotonic() - t0
        finally:
            MweModel.max_connections = own  # type: ignore[method-assign]
        perez = summaries[0].perez
        assert perez is not None
        shown = f"share {perez.share.value:.4f}, mean P(matching) {perez.mean_p.value:.4f}, {summaries[0].methods}"
        figures.append(shown)
        print(f"| {name} | {wall:.1f} | {shown} |  (load {os.getloadavg()[0]:.1f})", flush=True)
    print("figures agree" if figures[0] == figures[1] else "FIGURES DIFFER")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=32, help="generation requests per round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--n", type=int, default=20, help="items of the quick-start build")
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--skip-eval", action="store_true", help="no part 3 (needs the eval extra)")
    args = ap.parse_args()
    print(f"CPU: {cpu()}; load average at start {os.getloadavg()[0]:.1f}")
    sides: dict[str, Provider] = {"two contexts": TwoContextProvider(), "batched": LocalProvider()}
    warm = [CompletionRequest("Hello", max_tokens=2, temperature=0.0)]
    for p in sides.values():
        p.complete(warm)  # load the model outside the timings
    rows: dict[str, list[dict[str, float]]] = {k: [] for k in sides}
    for r in range(args.rounds):
        requests, owners = workload(args.requests, r + 1)
        order = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in order:
            rows[name].append(decode(sides[name], requests, owners))
            m = rows[name][-1]
            print(
                f"round {r + 1} {name:>12}: {m['tokens']:.0f} tokens in {m['wall']:.1f} s = {m['tok_s']:.1f} tok/s, "
                f"{m['items']:.0f} items = {m['items_s']:.2f} items/s (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
    print()
    print("| decoding | tokens/s (per round) | items/s | × tokens/s |")
    print("| --- | --- | ---: | ---: |")
    base = statistics.mean(m["tok_s"] for m in rows["two contexts"])
    for name, ms in rows.items():
        tok = statistics.mean(m["tok_s"] for m in ms)
        per = " / ".join(f"{m['tok_s']:.0f}" for m in ms)
        items = statistics.mean(m["items_s"] for m in ms)
        print(f"| {name} | {tok:.0f} ({per}) | {items:.2f} | {tok / base:.2f} |")
    if args.skip_build:
        return
    print()
    print(f"| quick start (build power-seeking --n {args.n}, fresh cache) | wall s | kept | s per stage |")
    print("| --- | ---: | ---: | --- |")
    with tempfile.TemporaryDirectory(prefix="mwe-local-bench-") as tmp:
        for name, p in sides.items():
            wall, ds = quick_start(p, args.n, Path(tmp) / name.replace(" ", "-"))
            stages = ", ".join(f"{k} {v:.1f}" for k, v in (ds.manifest.timings_s or {}).items() if k != "total")
            print(f"| {name} | {wall:.1f} | {len(ds)} | {stages} |  (load {os.getloadavg()[0]:.1f})", flush=True)
        if not args.skip_eval:
            eval_side_by_side(ds, Path(tmp))


if __name__ == "__main__":
    main()
