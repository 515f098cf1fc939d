"""Where the quick start's time goes on the embedded model, and the least it could take here.

Each side runs `mwe build power-seeking --n 20` on a fresh cache in a process of its own, with
the batched decoder recording every llama_decode call (`Decoder.trace`); a least-squares fit over
those calls gives a cost per call, per row, per output row (the 262k-token output layer) and per
1,000 cache cells in use. From it the decode time splits into the work itself (prompt and
generated rows, output rows read) and what the batching adds: padding rows and padding output
rows (they keep answers independent of the batch), the cost per call, and the cells of finished
sequences the attention still walks. The floor is the work alone at that run's rates with no
padding, no per-call cost and an empty cache, plus the time outside decode calls. It is an
estimate, not a bound: it keeps the rows this scheduler evaluated (prefix sharing and cache clears
decide how many prompt rows that is), a fixed cost per row, and the outside time as it was; and
it scales with the host's speed on the day, so compare it with that run's wall time.

The two sides are how llama.cpp's OpenMP threads wait at a barrier: sleeping at once (`passive`,
mwe before) and spinning 1,000 rounds first (mwe's default now); libgomp reads the setting when
the library loads, hence one process per side, alternating which goes first in each round.

    python benchmarks/local_steps.py [--n 20] [--seed 0] [--rounds 2]

Goal (issue 21): the quick start in at most 35 s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from local_throughput import quick_start  # this script's folder is first on sys.path

from mwe.providers._llama_batch import Step
from mwe.providers.local import LocalProvider


def fit(steps: list[Step]) -> tuple[np.ndarray, float]:
    """Seconds per call, per row, per output row (read or padding) and per 1,000 cells in use, and
    R²: a call's time is close to linear in these (R² about 0.93), which lets the padding and the
    cells be priced apart from the work."""
    x = np.array([[1.0, s.rows, s.outputs + s.padding_outputs, s.cells / 1000] for s in steps])
    y = np.array([s.seconds for s in steps])
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    residual = y - x @ coef
    return coef, 1.0 - float(residual @ residual) / float(((y - y.mean()) ** 2).sum())


SIDES = {
    "sleep at once (before)": {"OMP_WAIT_POLICY": "passive"},
    "spin 1,000 rounds, then sleep (now)": {},
}


def child(n: int, seed: int) -> None:
    """One build with the decoder traced; prints one JSON line for the parent."""
    provider = LocalProvider()
    steps: list[Step] = []
    with tempfile.TemporaryDirectory(prefix="mwe-steps-") as tmp:
        t0 = time.monotonic()
        provider._get().trace = steps  # the model loads here, inside the wall time, as in a build
        _, ds = quick_start(provider, n, Path(tmp), seed)
        wall = time.monotonic() - t0
    coef, r2 = fit(steps)
    print(
        json.dumps(
            {
                "wall": wall,
                "kept": len(ds),
                "load": os.getloadavg()[0],
                "coef": [float(c) for c in coef],
                "r2": r2,
                "calls": len(steps),
                "decode": sum(s.seconds for s in steps),
                "rows": sum(s.rows for s in steps),
                "padding": sum(s.padding for s in steps),
                "outputs": sum(s.outputs for s in steps),
                "padding_outputs": sum(s.padding_outputs for s in steps),
                "cells": sum(s.cells for s in steps),
            }
        )
    )


def run_side(env: dict[str, str], args: argparse.Namespace) -> dict[str, Any]:
    """One build in a child process: libgomp takes its settings once, when llama_cpp loads."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    cmd = [sys.executable, __file__, "--child", "--n", str(args.n), "--seed", str(args.seed)]
    done = subprocess.run(cmd, env={**base, **env}, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def breakdown(r: dict[str, Any]) -> None:
    """The decode time split by the fit, so padding and cell costs can be told from the work."""
    per_call, per_row, per_out, per_kcell = r["coef"]
    real = r["rows"] - r["padding"]
    outside = r["wall"] - r["decode"]
    print(
        f"{r['calls']} decode calls, {r['decode']:.1f} s: {r['rows']} rows ({r['padding']} padding), "
        f"{r['outputs'] + r['padding_outputs']} output rows ({r['padding_outputs']} padding); fit (R² {r['r2']:.3f}): "
        f"{per_call * 1000:.1f} ms per call + {per_row * 1000:.2f} ms per row + {per_out * 1000:.2f} ms per output row "
        f"+ {per_kcell * 1000:.2f} ms per 1,000 cells in use"
    )
    print()
    print("| decode time, by the fit | s |")
    print("| --- | ---: |")
    print(f"| prompt and generated rows ({real}) | {real * per_row:.1f} |")
    print(f"| output rows read ({r['outputs']}) | {r['outputs'] * per_out:.1f} |")
    print(f"| padding rows and padding output rows | {r['padding'] * per_row + r['padding_outputs'] * per_out:.1f} |")
    print(f"| per call ({r['calls']} calls) | {r['calls'] * per_call:.1f} |")
    print(f"| attention over the cells in use (own context included) | {r['cells'] / 1000 * per_kcell:.1f} |")
    print(f"| outside decode calls (model load, sampling, parsing, rules, dedup, publishing) | {outside:.1f} |")
    print()
    print(
        f"floor: the work alone at this run's rates {floor(r) - outside:.1f} s + outside decode calls {outside:.1f} s "
        f"= {floor(r):.1f} s, against {r['wall']:.1f} s in all and the goal of 35 s"
    )


def floor(r: dict[str, Any]) -> float:
    """The rows this run evaluated and the output rows it read, at its fitted rates, plus the time
    outside decode calls: an estimate of what the same requests take with no batching overhead."""
    _, per_row, per_out, _ = r["coef"]
    return float((r["rows"] - r["padding"]) * per_row + r["outputs"] * per_out + r["wall"] - r["decode"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.n, args.seed)
        return
    print(f"quick start: build power-seeking --n {args.n} --seed {args.seed}, fresh cache, one process per build")
    got: dict[str, list[dict[str, Any]]] = {k: [] for k in SIDES}
    for r in range(args.rounds):
        order = list(SIDES) if r % 2 == 0 else list(reversed(SIDES))
        for name in order:
            got[name].append(run_side(SIDES[name], args))
            m = got[name][-1]
            print(f"round {r + 1} {name}: {m['wall']:.1f} s, kept {m['kept']} (load {m['load']:.1f})", flush=True)
    print()
    print("| OpenMP threads at a barrier | quick start s (per round) | decode calls s | ms per call (fit) | floor s |")
    print("| --- | --- | ---: | ---: | ---: |")
    for name, ms in got.items():
        walls = " / ".join(f"{m['wall']:.1f}" for m in ms)
        print(
            f"| {name} | {statistics.mean(m['wall'] for m in ms):.1f} ({walls}) | "
            f"{statistics.mean(m['decode'] for m in ms):.1f} | {statistics.mean(m['coef'][0] for m in ms) * 1000:.1f} | "
            f"{statistics.mean(floor(m) for m in ms):.1f} |"
        )
    print()
    print(f"where the time goes, {list(SIDES)[-1]}, last round:")
    breakdown(got[list(SIDES)[-1]][-1])


if __name__ == "__main__":
    main()
