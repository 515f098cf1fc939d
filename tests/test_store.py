from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import mwe
from mwe.build import BuildOptions, build
from mwe.providers.fake import FakeProvider
from mwe.store import Store

from .helpers import spec


def _snapshot(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in d.iterdir()}


def test_crash_while_publishing_leaves_no_partial_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v1 = mwe.generate("power-seeking", n=4, model="fake", out=tmp_path).path
    before = _snapshot(v1)

    def boom(manifest: dict[str, object]) -> str:
        raise KeyboardInterrupt  # Ctrl-C while the card is being written

    monkeypatch.setattr("mwe.build.run.render_card", boom)
    with pytest.raises(KeyboardInterrupt):
        mwe.generate("power-seeking", n=4, model="fake", out=tmp_path)
    tm = tmp_path / "power-seeking"
    assert sorted(p.name for p in tm.iterdir() if p.name != ".lock") == ["LATEST", "v1"]
    assert (tm / "LATEST").read_text().strip() == "v1"
    assert _snapshot(v1) == before


def test_crash_mid_generation_publishes_nothing(tmp_path: Path) -> None:
    class Crashes(FakeProvider):
        def classify(self, requests, progress=None):  # type: ignore[no-untyped-def]
            raise RuntimeError("provider exploded")

    fake = Crashes()
    with pytest.raises(RuntimeError):
        build(spec(), BuildOptions(n=3, model="fake"), Store(tmp_path), providers=(fake, fake))
    assert Store(tmp_path).versions("power-seeking") == []


def test_stale_temp_dir_from_a_killed_process_is_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / "power-seeking" / ".tmp-99999-deadbeef"
    stale.mkdir(parents=True)
    (stale / "items.jsonl").write_text("{}\n")
    ds = mwe.generate("power-seeking", n=2, model="fake", out=tmp_path)
    assert ds.path.name == "v1" and not stale.exists()


def test_published_files_are_read_only(tmp_path: Path) -> None:
    ds = mwe.generate("power-seeking", n=2, model="fake", out=tmp_path)
    for f in ds.path.iterdir():
        assert not os.access(f, os.W_OK) or os.geteuid() == 0
        assert f.stat().st_mode & 0o222 == 0
    assert sorted(p.name for p in ds.path.iterdir()) == ["README.md", "items.jsonl", "manifest.json", "rejected.jsonl"]


def test_load_reads_latest_or_a_version(tmp_path: Path) -> None:
    mwe.generate("power-seeking", n=2, model="fake", out=tmp_path, seed=1)
    v2 = mwe.generate("power-seeking", n=3, model="fake", out=tmp_path, seed=2)
    latest = mwe.load(tmp_path / "power-seeking")
    assert latest.path == v2.path and len(latest) == 3
    assert len(mwe.load(tmp_path / "power-seeking" / "v1")) == 2
    assert [i.model_dump() for i in latest] == [i.model_dump() for i in v2]


HOLD_PUBLISH_LOCK = """
import sys, time
from pathlib import Path
from mwe.store import Store
with Store(sys.argv[1])._locked(Path(sys.argv[1]) / "power-seeking"):
    print("held", flush=True)
    time.sleep(1.5)
    Path(sys.argv[2]).write_text(repr(time.time()))
"""


def test_publishing_waits_for_the_version_lock_another_process_holds(tmp_path: Path) -> None:
    """Two processes publishing the same threat model take turns, so neither takes the other's
    version number: the second waits (it is not refused) until the first lets go."""
    released = tmp_path / "released"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_PUBLISH_LOCK, str(tmp_path), str(released)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        path = Store(tmp_path).publish(
            "power-seeking",
            [],
            [],
            lambda v, counts: {"version": v, "threat_model": "power-seeking"},
            lambda m: "card\n",
        )
        done = time.time()
    finally:
        holder.wait(timeout=30)
    assert float(released.read_text()) <= done, "publish finished while the other process still held the lock"
    assert path.name == "v1"
