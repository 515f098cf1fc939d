"""Same spec, seed, models and options, `--no-cache`: the same dataset, byte for byte.

items.jsonl, rejected.jsonl and the card (README.md) must be byte-identical; manifest.json too
apart from `created_at` and `timings_s`, which say when and how fast. Each build runs in its own
process, so hash randomisation and thread timing differ between the two. At these sizes the old
two-context decoder passed too (its variation depended on timing); tests/test_local_batch.py pins
the mechanism: an embedded answer is bit-identical whatever other requests shared its batch.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

IDENTICAL = ("items.jsonl", "rejected.jsonl", "README.md")


def _build(env: dict[str, str], out: Path, *args: str) -> Path:
    run = subprocess.run(
        [sys.executable, "-m", "mwe", "build", "power-seeking", "--no-cache", "--out", str(out), *args],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    return out / "power-seeking" / "v1"


def _assert_same(a: Path, b: Path) -> None:
    for name in IDENTICAL:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for m in (ma, mb):
        m.pop("created_at")
        m.pop("timings_s")
    assert ma == mb


def test_fake_builds_are_byte_identical(env: dict[str, str], tmp_path: Path) -> None:
    a = _build(env, tmp_path / "a", "--model", "fake", "--n", "40")
    b = _build(env, tmp_path / "b", "--model", "fake", "--n", "40")
    assert (a / "items.jsonl").read_text().count("\n") > 0
    _assert_same(a, b)


@pytest.mark.local
def test_embedded_builds_are_byte_identical(env: dict[str, str], tmp_path: Path) -> None:
    a = _build(env, tmp_path / "a", "--n", "2", "--max-attempts", "8")
    b = _build(env, tmp_path / "b", "--n", "2", "--max-attempts", "8")
    assert json.loads((a / "manifest.json").read_text())["funnel"]["generated"] > 0
    _assert_same(a, b)
