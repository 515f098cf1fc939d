"""The typed manifest: the build writes it, every reader reads it, and versions written by older
mwe still load (tests/data/old-manifest holds a FAKE version published by mwe at commit da6512a,
before the manifest had a schema version, a `rules` section or `judge.min_label_confidence`)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import mwe
from mwe.card import render_card
from mwe.diff import diff
from mwe.errors import StoreError
from mwe.manifest import SCHEMA_VERSION, Manifest, write_manifest_schema
from mwe.report import render

from .conftest import REPO

OLD = Path(__file__).parent / "data" / "old-manifest" / "power-seeking"


def _load(path: Path) -> mwe.Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both versions here are FAKE data, as they say
        return mwe.load(path)


@pytest.fixture
def old(tmp_path: Path) -> Path:
    root = tmp_path / "generated" / "power-seeking"
    shutil.copytree(OLD, root)
    return root


def test_a_manifest_written_before_the_schema_version_loads(old: Path) -> None:
    ds = _load(old / "v1")
    written = json.loads((old / "v1" / "manifest.json").read_text())
    m = ds.manifest
    assert "schema_version" not in written and "rules" not in written
    assert m.schema_version == 0  # read as "before the manifest was versioned"
    assert (m.threat_model, m.version, m.fake) == ("power-seeking", 1, True)
    assert m.build.n == 6 and m.build.seed == 3
    assert m.funnel.kept == len(ds) == m.counts.items
    assert m.generator.by_format["mcq"].max_attempts == written["generator"]["by_format"]["mcq"]["max_attempts"]
    assert m.judge.min_label_confidence is None and m.rules.checks == []  # absent then: defaults now
    assert m.to_json() == written  # read back as written, nothing added
    assert ds.manifest["funnel"] == written["funnel"]  # dict-style reading as before the model


def test_readers_work_on_an_old_manifest_and_against_a_new_one(old: Path) -> None:
    a = _load(old / "v1")
    card = render_card(a.manifest)
    assert "FAKE DATA" in card and "power-seeking v1" in card
    assert "mwe report — power-seeking v1" in render(a)
    b = mwe.generate("power-seeking", n=6, model="fake", seed=3, out=old.parent)
    assert b.manifest.schema_version == SCHEMA_VERSION and b.manifest.rules.checks
    result = diff(a, _load(b.path))
    assert result["a"]["version"] == 1 and result["b"]["version"] == 2
    assert "seed" not in result["build"]  # both seed 3: nothing to report
    written = a.export("csv", old.parent / "csv")
    assert written and written[0].name == "power-seeking-v1.csv"


def test_a_new_manifest_reads_back_as_the_build_wrote_it(tmp_path: Path) -> None:
    ds = mwe.generate("sycophancy", n=4, model="fake", out=tmp_path)
    on_disk = json.loads((ds.path / "manifest.json").read_text())
    assert on_disk["schema_version"] == SCHEMA_VERSION
    assert Manifest.read(ds.path / "manifest.json") == ds.manifest
    assert ds.manifest.to_json() == on_disk


def test_unknown_fields_are_kept_and_a_wrong_one_names_the_file_and_field(old: Path, tmp_path: Path) -> None:
    data = json.loads((old / "v1" / "manifest.json").read_text())
    data["from_a_newer_mwe"] = {"x": 1}
    data["funnel"]["also_new"] = 2
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    m = Manifest.read(path)
    assert m.to_json()["from_a_newer_mwe"] == {"x": 1} and m.to_json()["funnel"]["also_new"] == 2
    data["build"]["n"] = "many"
    path.write_text(json.dumps(data))
    with pytest.raises(StoreError, match=r"manifest\.json: field build\.n: "):
        Manifest.read(path)


def test_mwe_schema_writes_the_manifest_schema_beside_the_spec_schema(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "mwe", "schema", "--out", str(tmp_path / "schema.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    schema = json.loads((tmp_path / "manifest.schema.json").read_text())
    assert schema["title"] == "mwe manifest" and "schema_version" in schema["properties"]
    assert set(schema["required"]) == {"threat_model", "version"}  # everything else may be absent in old files


def test_shipped_manifest_schema_is_up_to_date(tmp_path: Path) -> None:
    write_manifest_schema(tmp_path / "manifest.schema.json")
    shipped = REPO / "threat_models" / "manifest.schema.json"
    assert (tmp_path / "manifest.schema.json").read_text() == shipped.read_text(), "run: mwe schema"
