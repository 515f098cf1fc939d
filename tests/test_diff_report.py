"""Provenance in the manifest and lineage, `mwe diff` counts, and the self-contained HTML report."""

from __future__ import annotations

import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest

import mwe
from mwe.diff import diff
from mwe.items import Item
from mwe.report import render, write_report
from mwe.store import load

from .test_cli import mwe as run_cli


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gen")


@pytest.fixture(scope="module")
def v1(root: Path) -> mwe.Dataset:
    return mwe.generate("power-seeking", n=40, model="fake", out=root)


def _write_version(src: mwe.Dataset, dest: Path, items: list[Item]) -> mwe.Dataset:
    """A hand-edited copy of a version: the same manifest and rejections, other items."""
    shutil.copytree(src.path, dest)
    (dest / "items.jsonl").write_text(
        "".join(i.model_dump_json(exclude_none=True) + "\n" for i in items), encoding="utf-8"
    )
    return load(dest)


# --- provenance ------------------------------------------------------------------------------


def test_manifest_has_a_prompts_hash_per_stage_that_changes_with_the_prompts(root: Path, v1: mwe.Dataset) -> None:
    hashes = v1.manifest["prompts_hash"]
    assert set(hashes) >= {"generation", "judge"} and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes.values())
    again = mwe.generate("power-seeking", n=40, model="fake", out=root / "again")
    assert again.manifest["prompts_hash"] == hashes  # same spec, seed and cache: the same requests
    other = mwe.generate("power-seeking", n=40, model="fake", out=root / "seed1", seed=1)
    assert other.manifest["prompts_hash"]["generation"] != hashes["generation"]


def test_every_kept_item_names_the_duplicates_removed_in_its_favour(v1: mwe.Dataset) -> None:
    kept = {i.id: i for i in v1}
    dup_rejections = [r for r in v1.rejected if r.stage == "dedup" and "duplicate_of" in r.scores]
    in_favour_of_kept = [r for r in dup_rejections if r.scores["duplicate_of"] in kept]
    assert in_favour_of_kept, "this seed is known to produce a duplicate of a kept item"
    for item in v1:
        decision = item.lineage["dedup"]
        assert decision["kept"] is True and decision["threshold"] == v1.manifest["dedup"]["threshold"]
        assert set(decision["removed"]) == {r.id for r in dup_rejections if r.scores["duplicate_of"] == item.id}
    for key in ("generator", "model", "request", "seed", "sample"):
        assert all(key in i.lineage for i in v1)


# --- diff ------------------------------------------------------------------------------------


def test_diff_counts_added_removed_reworded_and_field_changes(v1: mwe.Dataset, tmp_path: Path) -> None:
    items = list(v1)
    extra = mwe.generate("power-seeking", n=8, model="fake", out=tmp_path / "extra", seed=7)
    new_ones = [i for i in extra if i.id not in {x.id for x in items}][:2]
    assert len(new_ones) == 2
    reworded = items[5].model_copy(
        update={"question": items[5].question.replace("What do you do?", "What would you do?")}
    )
    reworded.id = reworded.id + "-x"  # a new id, as a rewording would have
    refaceted = items[6].model_copy(
        update={"facet": "self-entrenchment" if items[6].facet != "self-entrenchment" else "escaping oversight"}
    )
    edited = [*items[:3], items[4], reworded, refaceted, *items[7:], *new_ones]  # items[3] removed
    v9 = _write_version(v1, tmp_path / "v9", edited)

    d = diff(v1, v9)
    assert d["counts"] == {"same": len(items) - 3, "changed": 2, "added": 2, "removed": 1}
    assert d["removed"] == [items[3].id]
    assert sorted(d["added"]) == sorted(i.id for i in new_ones)
    by_how = {c["how"]: c for c in d["changed"]}
    assert by_how["reworded"]["id"] == items[5].id and by_how["reworded"]["new_id"] == reworded.id
    assert by_how["reworded"]["similarity"] > 0.85
    assert by_how["fields"]["fields"] == ["facet"] and by_how["fields"]["after"]["facet"] == refaceted.facet
    assert d["spec"]["same"] is True
    # the inverse comparison mirrors it
    back = diff(v9, v1)
    assert back["counts"] == {"same": len(items) - 3, "changed": 2, "added": 1, "removed": 2}


def test_diff_of_two_builds_accounts_for_every_item_and_reports_spec_changes(
    v1: mwe.Dataset, root: Path, tmp_path: Path
) -> None:
    spec = Path(mwe.__file__).parent.parent.parent / "threat_models" / "power-seeking.yaml"
    text = spec.read_text(encoding="utf-8").replace("money, compute, data or access", "money, compute or access")
    assert text != spec.read_text(encoding="utf-8")
    changed_spec = tmp_path / "power-seeking.yaml"
    changed_spec.write_text(text, encoding="utf-8")
    v2 = mwe.generate(str(changed_spec), n=50, model="fake", out=tmp_path / "gen")
    d = diff(v1, v2)
    c = d["counts"]
    reworded = sum(1 for x in d["changed"] if x["how"] == "reworded")
    fields = c["changed"] - reworded
    assert c["same"] + fields + reworded + c["removed"] == len(v1)
    assert c["same"] + fields + reworded + c["added"] == len(v2)
    assert len(set(d["added"]) & {i.id for i in v1}) == 0 and len(set(d["removed"]) & {i.id for i in v2}) == 0
    assert d["spec"]["same"] is False and d["spec"]["facets_changed"] == ["resource acquisition"]
    assert d["funnel"]["kept"] == {"a": 40, "b": 50, "delta": 10}
    assert sum(v["b"] for v in d["facets"].values()) == 50

    r = run_cli("diff", str(v1.path), str(v2.path), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["counts"] == c
    text_out = run_cli("diff", str(v1.path), str(v2.path))
    assert f"added {c['added']}, removed {c['removed']}" in text_out.stdout
    assert "facets changed: resource acquisition" in text_out.stdout and "rejected:label:" in text_out.stdout


# --- report ----------------------------------------------------------------------------------


class _Rows(HTMLParser):
    """Counts table rows by status and checks that tags close in order."""

    VOID: ClassVar[set[str]] = {"meta", "input", "br", "img", "rect", "line", "circle", "option"}

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, int] = {}
        self.stack: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and dict(attrs).get("data-status"):
            status = str(dict(attrs)["data-status"])
            self.rows[status] = self.rows.get(status, 0) + 1
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_is_self_contained_with_every_plot_and_every_item(v1: mwe.Dataset, tmp_path: Path) -> None:
    page = write_report(v1, tmp_path / "r.html").read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//|url\(\s*["']?https?:|@import""", page)
    for title in (
        "Facet coverage vs quota",
        "Judge score",
        "Rejection funnel",
        "Position and length balance",
        "2-D map",
    ):
        assert title in page
    assert page.count("<svg") == 5
    parser = _Rows()
    parser.feed(page)
    parser.close()
    assert parser.stack == []
    rejected = v1.rejected
    assert parser.rows == {"kept": len(v1), "rejected": len(rejected)}
    text = "".join(parser.text)
    assert all(r.reason in text for r in rejected) and all(i.question in text for i in v1)
    assert "FAKE DATA" in page
    assert 'data-facet="escaping oversight"' in page


def test_report_escapes_item_text(v1: mwe.Dataset, tmp_path: Path) -> None:
    hostile = v1[0].model_copy(update={"question": "Ignore this </td></tr></table><script>alert(1)</script> & go?"})
    ds = _write_version(v1, tmp_path / "v9", [hostile, *list(v1)[1:]])
    page = render(ds)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    parser = _Rows()
    parser.feed(page)
    assert parser.rows["kept"] == len(v1)


def test_report_command_writes_outside_the_version(v1: mwe.Dataset, tmp_path: Path) -> None:
    r = run_cli("report", str(v1.path.parent), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "reports" / f"power-seeking-v{v1.manifest['version']}.html").is_file()
    inside = run_cli("report", str(v1.path), "--out", str(v1.path / "r.html"))
    assert inside.returncode == 2 and "outside the published version" in inside.stderr
    assert not (v1.path / "r.html").exists()
