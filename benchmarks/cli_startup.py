"""How long `mwe --help` takes, against the `--help` of a two-command typer app, in one run.

Both are started as fresh interpreters (`python -m mwe --help` and `python APP.py --help`, the app
written to a temporary file), alternating, so a busy machine slows both alike; each is timed
`--runs` times and the medians are compared. The baseline is the least a typer CLI costs:
Python, typer and the rich help renderer; what `mwe --help` adds is mwe's own import.

    python benchmarks/cli_startup.py [--runs 15]

Printed: the median and the spread of each, and the ratio of the medians. Goal (issue 20):
ratio at most 1.5.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TWO_COMMANDS = '''
import typer

app = typer.Typer(help="A two-command app.", add_completion=False)


@app.command()
def hello(name: str) -> None:
    """Greet someone."""
    print(f"hello {name}")


@app.command()
def bye(name: str, loud: bool = False) -> None:
    """Say goodbye."""
    print(f"bye {name}")


if __name__ == "__main__":
    app()
'''


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0 or "Usage" not in done.stdout:
        raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="timed starts of each (after one warm-up each)")
    args = parser.parse_args()
    # This checkout's mwe, whatever else is installed.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "two_commands.py"
        app.write_text(TWO_COMMANDS, encoding="utf-8")
        commands = {
            "mwe --help": [sys.executable, "-m", "mwe", "--help"],
            "typer app --help": [sys.executable, str(app), "--help"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for cmd in commands.values():  # warm the file-system cache and the .pyc files first
            timed(cmd, env)
        for _ in range(args.runs):
            for name, cmd in commands.items():
                times[name].append(timed(cmd, env))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    for name, ts in times.items():
        print(
            f"{name:18} median {medians[name] * 1000:6.0f} ms   min {min(ts) * 1000:6.0f}   max {max(ts) * 1000:6.0f}"
        )
    ratio = medians["mwe --help"] / medians["typer app --help"]
    print(f"ratio (mwe / typer app, medians of {args.runs} runs each): {ratio:.2f}   goal: <= 1.5")


if __name__ == "__main__":
    main()
