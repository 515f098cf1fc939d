"""Every row of the docs' exit-code table (docs/errors.md), produced through the CLI as a user would meet it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from mwe.spec import find_spec

from .loopback import Loopback

ERRORS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "errors.md"


def cli(*args: str, env: dict[str, str] | None = None, code: str | None = None) -> subprocess.CompletedProcess[str]:
    head = [sys.executable, "-c", code] if code else [sys.executable, "-m", "mwe"]
    return subprocess.run([*head, *args], capture_output=True, text=True, timeout=180, env=env)


def _ok(tmp: Path) -> subprocess.CompletedProcess[str]:
    return cli("build", "power-seeking", "--n", "2", "--model", "fake", "--out", str(tmp))


def _unexpected(tmp: Path) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys, mwe.build as p\n"
        "from mwe.errors import MweError\n"
        "def broken(*a, **k): raise MweError('an unexpected failure')\n"
        "p.build = broken\n"
        "from mwe.cli import main\n"
        "sys.argv = ['mwe', *sys.argv[1:]]\n"
        "main()\n"
    )
    return cli("build", "power-seeking", "--n", "2", "--model", "fake", "--out", str(tmp), code=code)


def _bad_spec(tmp: Path) -> subprocess.CompletedProcess[str]:
    return cli("build", "no-such-behaviour", "--model", "fake", "--out", str(tmp))


def _shortfall(tmp: Path) -> subprocess.CompletedProcess[str]:
    args = ["--n", "10", "--model", "fake", "--judge-threshold", "10", "--max-attempts", "10"]
    return cli("build", "power-seeking", *args, "--out", str(tmp))


def _missing_key(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    return cli("build", "power-seeking", "--n", "2", "--model", "openai/gpt-4o-mini", "--out", str(tmp), env=env)


def _not_a_dataset(tmp: Path) -> subprocess.CompletedProcess[str]:
    return cli("show", str(tmp / "nothing-here"))


def _cost_limit(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-exit-6"}
    with Loopback() as srv:
        args = ["--model", "openai/gpt-4o-mini", "--base-url", srv.url + "/v1", "--max-cost", "0.00001"]
        return cli("build", "power-seeking", "--n", "8", *args, "--out", str(tmp), env=env)


def _uncalibrated(tmp: Path) -> subprocess.CompletedProcess[str]:
    data = yaml.safe_load(find_spec("power-seeking").read_text(encoding="utf-8"))
    data["judge"]["min_kappa"] = 0.4
    spec = tmp / "power-seeking.yaml"
    spec.write_text(yaml.safe_dump(data), encoding="utf-8")
    return cli("build", str(spec), "--n", "2", "--model", "fake", "--out", str(tmp / "gen"))


def _ctrl_c(tmp: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-exit-130"}
    with Loopback(latency=(0.3, 0.5)) as srv:
        cmd = [sys.executable, "-m", "mwe", "build", "power-seeking", "--n", "8", "--model", "openai/gpt-4o-mini"]
        cmd += ["--base-url", srv.url + "/v1", "--out", str(tmp)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        deadline = time.monotonic() + 60
        while srv.model_requests == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


CASES: dict[int, tuple[Callable[[Path], subprocess.CompletedProcess[str]], str]] = {
    0: (_ok, "kept 2/2"),
    1: (_unexpected, "an unexpected failure"),
    2: (_bad_spec, "unknown threat model"),
    3: (_shortfall, "fell short"),
    4: (_missing_key, "OPENAI_API_KEY"),
    5: (_not_a_dataset, "not a dataset version"),
    6: (_cost_limit, "max-cost"),
    7: (_uncalibrated, "no stored calibration"),
    130: (_ctrl_c, "interrupted"),
}


def test_every_row_of_the_documented_exit_code_table_has_a_case() -> None:
    rows = {int(m.group(1)) for m in re.finditer(r"^\| (\d+) \|", ERRORS_PAGE.read_text(encoding="utf-8"), re.M)}
    assert rows == set(CASES)


@pytest.mark.parametrize("code", sorted(CASES), ids=[f"{c}-{CASES[c][0].__name__.strip('_')}" for c in sorted(CASES)])
def test_fault_gives_the_documented_exit_code(code: int, tmp_path: Path) -> None:
    make, words = CASES[code]
    r = make(tmp_path)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert words.lower() in (r.stdout + r.stderr).lower()
    if code:
        assert "Traceback" not in r.stderr


@pytest.fixture(scope="module")
def fake_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    assert _ok(out).returncode == 0
    return out / "power-seeking"


FS_CASES = {
    "export": (["export", "{ds}", "--out", "/proc/nope"], "/proc/nope", "--out"),
    "report": (["report", "{ds}", "--out", "/proc/nope/r.html"], "/proc/nope/r.html", "--out"),
    "eval": (["eval", "{ds}", "--model", "local", "--log-dir", "/proc/nope"], "/proc/nope", "--log-dir"),
    "new": (["new", "foo", "--dir", "/proc/nope"], "/proc/nope/foo.yaml", "--dir"),
    "schema": (["schema", "--out", "/proc/nope/s.json"], "/proc/nope/s.json", "--out"),
    "build-cache": (["build", "power-seeking", "--n", "1", "--out", "{tmp}"], "/proc/nocache", "MWE_CACHE_DIR"),
    "cache-stats": (["cache", "stats"], "/proc/nocache", "MWE_CACHE_DIR"),
    "calibrate-cache": (["calibrate", "power-seeking", "--out", "{tmp}"], "/proc/nocache", "MWE_CACHE_DIR"),
}


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc for a path no one can write")
@pytest.mark.parametrize("case", sorted(FS_CASES))
def test_a_file_system_error_is_a_store_error_naming_the_path(case: str, fake_dataset: Path, tmp_path: Path) -> None:
    args, path, remedy = FS_CASES[case]
    env = {**os.environ, "MWE_CACHE_DIR": "/proc/nocache" if path == "/proc/nocache" else str(tmp_path / "cache")}
    r = cli(*(a.format(ds=fake_dataset, tmp=tmp_path) for a in args), env=env)
    assert r.returncode == 5, (r.stdout, r.stderr)
    # the fake fixture's FAKE DATA warning may come first; the error itself is one line, no traceback
    lines = [ln for ln in r.stderr.strip().splitlines() if not (ln.startswith("warning: ") and "FAKE DATA" in ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert path in lines[0] and remedy in lines[0]


def test_a_shortfall_names_the_format_and_facets_what_they_spent_and_the_option_for_more(tmp_path: Path) -> None:
    r = _shortfall(tmp_path)
    assert r.returncode == 3
    m = json.loads((tmp_path / "power-seeking" / "v1" / "manifest.json").read_text(encoding="utf-8"))
    for fmt, f in m["generator"]["by_format"].items():
        assert f["shortfall"]  # --judge-threshold 10 keeps nothing
        facet, short = next(iter(f["shortfall"].items()))
        assert f"{fmt} fell short ({facet} by {short}" in r.stderr
        spent = f"after spending {f['generation_requests']} of its {f['max_attempts']} generation requests"
        assert spent in r.stderr
    assert "--max-attempts 20 (now 10, split equally over the formats)" in r.stderr
