"""Kill a build with SIGKILL at random moments, resume it each time, and count what was lost or paid twice.

A loopback server (tests/loopback.py, OpenAI wire format, answers after 50-250 ms) stands in for
the API. First an uninterrupted reference build; then the same build (same seed, a fresh cache
and output directory) is started as `python -m mwe build …` and killed with SIGKILL after a random
delay, again and again, until it has been killed `--kills` times; then it runs to the end.

Printed: kills, requests the server answered, repeated requests: requests answered again after
an answer the client could have received (sent more than 100 ms before any kill and not after it;
the server also answers requests of a client it no longer has, and those are rightly asked again),
and all repeats beyond the ones the reference itself makes; items lost (reference
items missing from the final dataset), and whether items.jsonl, rejected.jsonl, README.md and the
manifest (less its times, usage and cost, which say how the run went) are byte-identical to the
reference.

    python benchmarks/crash_resume.py [--kills 20] [--n 24] [--seed 0]

Goal (issue 9): lost 0, repeats 0, identical true.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loopback import Loopback

ROOT = Path(__file__).resolve().parents[1]

VOLATILE = ("created_at", "timings_s", "usage", "cost")


def command(server: Loopback, n: int, out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "mwe",
        "build",
        "power-seeking",
        "--n",
        str(n),
        "--model",
        "openai-compatible/bench",
        "--base-url",
        server.url + "/v1",
        "--concurrency",
        "4",
        "--out",
        str(out),
    ]


def published(out: Path) -> dict[str, bytes]:
    version = out / "power-seeking" / "v1"
    files = {f: (version / f).read_bytes() for f in ("items.jsonl", "rejected.jsonl", "README.md")}
    manifest = json.loads((version / "manifest.json").read_text(encoding="utf-8"))
    for key in VOLATILE:
        manifest.pop(key, None)
    files["manifest.json (less times, usage, cost)"] = json.dumps(manifest, sort_keys=True).encode()
    return files


def repeats(answered: list[str]) -> int:
    return sum(c - 1 for c in Counter(answered).values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--n", type=int, default=24, help="items to keep")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, Loopback(latency=(0.05, 0.25)) as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        tmp_path = Path(tmp)

        env["MWE_CACHE_DIR"] = str(tmp_path / "cache-ref")
        start = time.monotonic()
        subprocess.run(command(server, args.n, tmp_path / "ref"), env=env, check=True, capture_output=True)
        ref_wall = time.monotonic() - start
        ref_answered = list(server.answered)
        reference = published(tmp_path / "ref")
        print(f"reference: {len(ref_answered)} requests answered, {ref_wall:.1f} s")

        server.answered.clear()
        env["MWE_CACHE_DIR"] = str(tmp_path / "cache")
        out = tmp_path / "crash"
        kills, runs = 0, 0
        kill_times: list[float] = []
        while True:
            runs += 1
            proc = subprocess.Popen(
                command(server, args.n, out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            if kills < args.kills:
                try:
                    proc.wait(timeout=rng.uniform(0.5, 3.0))  # python start-up is about 1 s of this
                except subprocess.TimeoutExpired:
                    proc.kill()  # SIGKILL
                    proc.wait()
                    killed_at = time.monotonic()
                    kills += 1
                    kill_times.append(killed_at)
                    continue
                print(f"run {runs} finished before its kill moment")
            else:
                proc.wait()
            if proc.returncode != 0:
                print(f"run {runs} exited {proc.returncode}", file=sys.stderr)
                return 1
            break

        final = published(out)
        crash_answered = list(server.answered)
        with server._lock:
            times = list(server.accepted)[-len(crash_answered) :]
        # An answer sent in the 100 ms before a kill, or after it (the server still answers a dead
        # client's request), may never have reached the client: asking it again is not paying twice.
        in_flight = [any(k - 0.1 <= t <= k + 0.5 for k in kill_times) for t in times]
        received: set[str] = set()
        repeated_received = 0
        for body, lost in zip(crash_answered, in_flight, strict=True):
            repeated_received += body in received
            if not lost:
                received.add(body)
        repeated = repeats(crash_answered) - repeats(ref_answered)
        ref_items = {json.loads(line)["id"] for line in reference["items.jsonl"].decode().splitlines()}
        got_items = {json.loads(line)["id"] for line in final["items.jsonl"].decode().splitlines()}
        identical = {name: final[name] == data for name, data in reference.items()}
        print(f"kills: {kills} (SIGKILL), runs: {runs}")
        print(f"requests answered: {len(crash_answered)} with kills vs {len(ref_answered)} uninterrupted")
        print(
            f"repeated requests: {repeated_received} of answers already received; {repeated} in all, the others "
            f"re-asking the {sum(in_flight)} answers in flight at a kill (sent in the 100 ms before it or after it)"
        )
        print(f"items lost: {len(ref_items - got_items)} of {len(ref_items)}")
        for name, same in identical.items():
            print(f"  {name}: {'identical' if same else 'DIFFERENT'}")
        print(f"identical: {all(identical.values())}")
        ok = repeated_received == 0 and not (ref_items - got_items) and all(identical.values())
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
