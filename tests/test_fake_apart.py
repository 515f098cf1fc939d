"""Fake data stays apart: a FAKE build into an --out that holds a real version never becomes what
the threat-model folder means, is said to be FAKE wherever it is read, and is not evaluated unless
asked. The real version is built through the openai-compatible wire format against the loopback
server, by the CLI as a user runs it."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

import mwe
from mwe.store import FakeDataWarning, Store

from .conftest import REPO
from .loopback import Loopback
from .test_cli import mwe as run_cli


@pytest.fixture
def server() -> Iterator[Loopback]:
    with Loopback() as srv:
        yield srv


def _real_args(srv: Loopback) -> list[str]:
    model = ["--model", "openai-compatible/qwen", "--base-url", srv.url + "/v1"]
    return [*model, "--n", "4", "--format", "mcq", "--out", "gen"]


def test_a_fake_build_never_replaces_the_real_version(server: Loopback, tmp_path: Path) -> None:
    (tmp_path / "threat_models").mkdir()
    shutil.copy(REPO / "threat_models" / "power-seeking.yaml", tmp_path / "threat_models")
    real = run_cli("build", *_real_args(server), cwd=tmp_path)  # no names: every spec in ./threat_models
    assert real.returncode == 0, real.stderr
    fake = run_cli("build", "power-seeking", "--model", "fake", "--n", "4", "--format", "mcq", "--out", "gen")
    assert fake.returncode == 0, fake.stderr
    tm = tmp_path / "gen" / "power-seeking"
    assert json.loads((tm / "v2" / "manifest.json").read_text())["fake"] is True
    assert "the newest real version is gen/power-seeking/v1" in fake.stderr

    # load: the folder means the real version, LATEST too; the fake one only by its name, with a warning
    assert (tm / "LATEST").read_text().strip() == "v1"
    ds = mwe.load(tm)
    assert ds.path == tm / "v1" and ds.manifest["fake"] is False
    with pytest.warns(FakeDataWarning, match="FAKE DATA"):
        assert mwe.load(tm / "v2").manifest["fake"] is True
    shown = run_cli("show", str(tm))
    assert shown.returncode == 0 and "power-seeking v1" in shown.stdout
    assert "FAKE DATA" not in shown.stdout + shown.stderr and "warning" not in shown.stderr  # v1 is shown as real
    assert "newer FAKE version not shown" in shown.stdout and str(tm / "v2") in shown.stdout.replace("\n", "")
    assert "not shown" not in run_cli("show", str(tm / "v1")).stdout  # a version named: nothing skipped

    # eval: the folder plans the real version; the fake one is refused unless --allow-fake
    planned = run_cli("eval", str(tm), "--model", "local", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    assert str(tm / "v1") in planned.stderr and "FAKE" not in planned.stderr
    refused = run_cli("eval", str(tm / "v2"), "--model", "local", "--dry-run")
    assert refused.returncode == 2 and "FAKE DATA" in refused.stderr and "--allow-fake" in refused.stderr
    allowed = run_cli("eval", str(tm / "v2"), "--model", "local", "--dry-run", "--allow-fake")
    assert allowed.returncode == 0 and "warning:" in allowed.stderr and "FAKE DATA" in allowed.stderr

    # build with no names: the real build is up to date with v1 (not rebuilt because a fake v2 is newer)
    sent = server.model_requests
    again = run_cli("build", *_real_args(server), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert f"up to date ({Path('gen') / 'power-seeking' / 'v1'})" in again.stdout
    assert server.model_requests == sent and Store(tmp_path / "gen").versions("power-seeking") == [1, 2]
    fake_again = run_cli("build", "--model", "fake", "--n", "4", "--format", "mcq", "--out", "gen", cwd=tmp_path)
    assert fake_again.returncode == 0 and "up to date (gen/power-seeking/v2)" in fake_again.stdout

    # a newer real build moves LATEST; a LATEST left pointing at fake data by an older mwe is not trusted
    newer = run_cli("build", "power-seeking", *_real_args(server), "--seed", "1", cwd=tmp_path)
    assert newer.returncode == 0, newer.stderr
    assert (tm / "LATEST").read_text().strip() == "v3" and mwe.load(tm).path == tm / "v3"
    (tm / "LATEST").chmod(0o644)
    (tm / "LATEST").write_text("v2\n")
    assert mwe.load(tm).path == tm / "v3"


def test_every_command_reading_fake_data_says_so_on_stderr(tmp_path: Path) -> None:
    made = run_cli("build", "sycophancy", "--model", "fake", "--n", "3", "--out", "gen")
    assert made.returncode == 0, made.stderr
    path = str(tmp_path / "gen" / "sycophancy")  # no real version: the folder falls back to the fake one
    for args in (
        ["show", path],
        ["export", path, "--format", "csv", "--out", "ex"],
        ["report", path, "--out", "r.html"],
        ["diff", path + "/v1", path],
        ["audit", path],
    ):
        r = run_cli(*args)
        assert r.returncode == 0, (args, r.stderr)
        assert "warning:" in r.stderr and "FAKE DATA" in r.stderr, args
    refused = run_cli("eval", path, "--model", "local", "--dry-run")
    assert refused.returncode == 2 and "--allow-fake" in refused.stderr


def test_diff_names_changed_models_seeds_and_thresholds(tmp_path: Path) -> None:
    a = mwe.generate("power-seeking", n=4, model="fake", out="gen", formats=["mcq"])
    b = mwe.generate("power-seeking", n=4, model="fake", out="gen", formats=["mcq"], seed=5, embedder="tfidf-char")
    r = run_cli("diff", str(a.path), str(b.path))
    assert r.returncode == 0, r.stderr
    assert "spec: unchanged" in r.stdout
    assert "build: seed 0 -> 5; dedup embedder tfidf -> tfidf-char" in r.stdout
    assert "FAKE DATA" in r.stdout  # each side is marked
    same = json.loads(run_cli("diff", str(a.path), str(a.path), "--json").stdout)
    assert same["build"] == {}
