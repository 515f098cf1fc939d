"""Human review: the review file, the JSON API on a real uvicorn server, calibration from reviews,
persona gold, and the reviewed version. The page itself is driven in tests/test_review_browser.py."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

import mwe
from mwe.calibration import cohen_kappa, load_gold
from mwe.dataset import Dataset
from mwe.errors import StoreError
from mwe.reviews import ReviewLog, read_review, review_path, stratified_sample

from .conftest import SHARED
from .review_server import free_port, serving

pytest.importorskip("starlette", reason="mwe review needs the 'review' extra (starlette, uvicorn)")


def mwe_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mwe", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def fake_set(tmp_path: Path) -> Dataset:
    """A FAKE power-seeking set (mcq and persona items, several facets) built offline."""
    return mwe.generate("power-seeking", n=24, model="fake", out=tmp_path / "generated")


def _other(key: str | None) -> str:
    return "B" if key == "A" else "A"


def test_review_file_is_append_only_with_undo_and_survives_a_torn_line(fake_set: Dataset) -> None:
    path = review_path(fake_set.path, "ann")
    assert path == fake_set.path.parent / "reviews" / "v1.ann.jsonl"
    log = ReviewLog(path, "ann")
    log.start(1, [it.id for it in fake_set], None, 0)
    a, b = fake_set[0], fake_set[1]
    log.record(item_id=a.id, decision="accept", key=a.answer_matching_behavior)
    log.record(
        item_id=b.id, decision="relabel", key=b.answer_matching_behavior, new_key=_other(b.answer_matching_behavior)
    )
    assert log.undo() is not None and log.state.current().keys() == {a.id}
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["type"] for r in rows] == ["session", "decision", "decision", "undo"]
    assert rows[3]["undoes"] == rows[2]["seq"] == 2
    assert {"item_id", "decision", "key", "reviewer", "time", "seq"} <= rows[1].keys()
    # a crash in the middle of a write leaves half a line: it is skipped, and the next append starts clean
    with path.open("a") as fh:
        fh.write('{"type": "decision", "seq": 9, "item_id": "')
    reopened = ReviewLog(path, "ann")
    assert reopened.state.current().keys() == {a.id}
    reopened.record(item_id=b.id, decision="reject", key="A", reason="off topic")
    assert read_review(path).current()[b.id].decision == "reject"
    # anything else that is not an event is an error naming the file and line
    path.write_text(path.read_text() + '{"type": "vote"}\n')
    with pytest.raises(StoreError, match=r"v1\.ann\.jsonl: line \d+ is not a review event"):
        read_review(path)


def test_sample_is_stratified_by_facet_and_seeded(fake_set: Dataset) -> None:
    items = list(fake_set)
    sizes = Counter(it.facet for it in items)
    picked = stratified_sample(items, 8, seed=3)
    assert len(picked) == 8
    got = Counter(it.facet for it in picked)
    for facet, size in sizes.items():
        assert abs(got[facet] - 8 * size / len(items)) < 1 + 1e-9, (facet, got, sizes)
    assert [it.id for it in stratified_sample(items, 8, seed=3)] == [it.id for it in picked]
    assert {it.id for it in stratified_sample(items, 8, seed=4)} != {it.id for it in picked}


def test_json_api_records_undoes_and_resumes_after_sigkill(fake_set: Dataset) -> None:
    with serving(fake_set.path, "--reviewer", "kim", "--sample", "10") as srv:
        listed = srv.get("/api/items")
        assert listed["total"] == listed["count"] == 10
        items = listed["items"]
        first, second, third = items[0], items[1], items[2]
        assert srv.post("/api/decisions", {"item_id": first["id"], "decision": "accept"}).status_code == 200
        r = srv.post(
            "/api/decisions", {"item_id": second["id"], "decision": "relabel", "new_key": _other(second["key"])}
        )
        assert r.json()["recorded"]["new_key"] == _other(second["key"])
        bad = srv.post("/api/decisions", {"item_id": third["id"], "decision": "reject"})
        assert bad.status_code == 400 and "reason" in bad.json()["error"]
        assert srv.post("/api/decisions", {"item_id": "nope", "decision": "accept"}).status_code == 400
        assert (
            srv.post(
                "/api/decisions", {"item_id": third["id"], "decision": "relabel", "new_key": third["key"]}
            ).status_code
            == 400
        )
        r = srv.post(
            "/api/decisions", {"item_id": third["id"], "decision": "reject", "reason": "unclear", "note": "n1"}
        )
        assert r.json()["progress"]["decided"] == 3
        undone = srv.post("/api/undo").json()
        assert undone["undone"]["item_id"] == third["id"] and undone["progress"]["decided"] == 2
        assert srv.get("/api/items", undecided="1")["count"] == 8
        assert srv.get("/api/items", facet=first["facet"])["count"] == sum(
            1 for i in items if i["facet"] == first["facet"]
        )
        srv.post("/api/decisions", {"item_id": third["id"], "decision": "ambiguous"})
        twice = mwe_cli("review", str(fake_set.path), "--reviewer", "kim", "--port", str(free_port()))
        assert twice.returncode == 2 and "open in another mwe review" in twice.stderr
        srv.kill()  # kill -9: no shutdown handler, so only what was fsync'ed counts
    with serving(fake_set.path, "--reviewer", "kim") as srv:
        progress = srv.get("/api/progress")
        assert progress["total"] == 10 and progress["decided"] == 3
        assert progress["decisions"] == {"accept": 1, "reject": 0, "relabel": 1, "ambiguous": 1}
        resumed = srv.get("/api/items")["items"]
        assert [i["id"] for i in resumed] == [i["id"] for i in items]  # the same sample, in the same order
        assert resumed[1]["decision"]["decision"] == "relabel"
    other = mwe_cli("review", str(fake_set.path), "--reviewer", "kim", "--sample", "5")
    assert other.returncode == 2 and "--sample 10" in other.stderr


def _review(ds: Dataset, reviewer: str, plan: list[str]) -> Path:
    """Fixed decisions for the first items, written through the same log the server uses."""
    log = ReviewLog(review_path(ds.path, reviewer), reviewer)
    log.start(1, [it.id for it in ds], None, 0)
    for it, d in zip(ds, plan, strict=False):
        key = it.answer_matching_behavior
        log.record(
            item_id=it.id,
            decision=d,
            key=key,
            new_key=_other(key) if d == "relabel" else None,
            reason="off topic" if d == "reject" else None,
        )
    return log.path


def test_calibration_from_reviews_matches_scikit_learn(fake_set: Dataset) -> None:
    plan_a = ["accept", "relabel", "reject", "accept", "ambiguous", "accept", "relabel", "accept", "accept", "reject"]
    plan_b = ["accept", "accept", "reject", "relabel", "accept", "accept", "relabel", "accept", "reject", "reject"]
    file_a = _review(fake_set, "ann", plan_a)
    _review(fake_set, "bob", plan_b)
    one = mwe_cli(
        "calibrate",
        "power-seeking",
        "--model",
        "fake",
        "--gold",
        str(file_a),
        "--json",
        "--out",
        str(fake_set.path.parents[1]),
    )
    assert one.returncode == 0, one.stderr
    rec = json.loads(one.stdout)
    assert rec["n"] == 7  # accepted or relabelled: rejected and ambiguous carry no label
    truth, pred = [], []
    for t, row in rec["confusion"].items():
        for p, count in row.items():
            truth += [t] * count
            pred += [p] * count
    assert rec["kappa"] == pytest.approx(cohen_kappa_score(truth, pred), abs=1e-4)
    assert rec["accuracy"] == pytest.approx(sum(a == b for a, b in zip(truth, pred, strict=True)) / 7, abs=1e-4)
    rubric = rec["rubric_agreement"]
    assert rubric["n"] == 9 and rubric["human_rejected"] == 2
    both = mwe_cli(
        "calibrate",
        "power-seeking",
        "--model",
        "fake",
        "--gold",
        str(fake_set.path),
        "--out",
        str(fake_set.path.parents[1]),
    )
    assert both.returncode == 0, both.stderr
    assert "inter-rater ann vs bob: 10 items both decided" in both.stdout
    stored = json.loads((fake_set.path.parent / "calibration.json").read_text())["fake"]
    cats = {"accept": None, "relabel": None}
    a = [
        (_other(it.answer_matching_behavior) if d == "relabel" else it.answer_matching_behavior) if d in cats else d
        for it, d in zip(fake_set, plan_a, strict=False)
    ]
    b = [
        (_other(it.answer_matching_behavior) if d == "relabel" else it.answer_matching_behavior) if d in cats else d
        for it, d in zip(fake_set, plan_b, strict=False)
    ]
    expected = cohen_kappa_score(a, b)
    assert stored["inter_rater"][0]["kappa"] == pytest.approx(expected, abs=1e-4)
    assert cohen_kappa(a, b) == pytest.approx(expected)  # our own κ agrees with scikit-learn's too
    assert stored["human_review"]["disputed_items"] == sum(
        1 for x, y, pa, pb in zip(a, b, plan_a, plan_b, strict=False) if x != y and pa in cats and pb in cats
    )


def test_persona_gold_in_the_anthropic_layout(tmp_path: Path) -> None:
    source = SHARED / "persona" / "agreeableness.jsonl"
    if source.is_file():
        lines = source.read_text().splitlines()[:40]
    else:  # the same layout, written here, where the shared data is absent
        lines = [
            json.dumps(
                {
                    "question": f'Is the following statement something you would say?\n"S {i}"',
                    "statement": f"S {i}",
                    "answer_matching_behavior": " Yes" if i % 2 else " No",
                    "answer_not_matching_behavior": " No" if i % 2 else " Yes",
                }
            )
            for i in range(40)
        ]
    gold = tmp_path / "persona-gold.jsonl"
    gold.write_text("\n".join(lines) + "\n")
    items = load_gold(gold)
    assert len(items) == 40 and all(g.choices == ("Yes", "No") and g.statement for g in items)
    rows = [json.loads(line) for line in lines]
    assert [g.answer for g in items] == ["A" if r["answer_matching_behavior"].strip() == "Yes" else "B" for r in rows]
    run = mwe_cli("calibrate", "power-seeking", "--model", "fake", "--gold", str(gold), "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["n"] == 40


def test_reviewed_version_keeps_the_funnel_and_says_what_a_person_found(fake_set: Dataset) -> None:
    plan = ["accept", "reject", "relabel", "accept", "ambiguous", "reject", "accept"]
    path = _review(fake_set, "ann", plan)
    v1 = fake_set.path
    before = {p.name: p.read_bytes() for p in v1.iterdir()}
    run = mwe_cli("build", "power-seeking", "--from-review", str(path))
    assert run.returncode == 0, run.stderr
    v2 = mwe.load(v1.parent)
    assert v2.path.name == "v2" and {p.name: p.read_bytes() for p in v1.iterdir()} == before
    m = v2.manifest
    assert len(v2) == len(fake_set) - 2 == m["counts"]["items"]
    human = [r for r in v2.rejected if r.stage == "human"]
    assert len(human) == 2 and all(
        r.reason == "human: off topic" and r.lineage["review"]["reviewer"] == "ann" for r in human
    )
    f = m["funnel"]
    assert f["generated"] == f["kept"] + sum(f["rejected_by_stage"].values()) == len(v2) + len(v2.rejected)
    for facet, row in m["funnel_by_facet"].items():
        assert row["generated"] == row["kept"] + sum(v for k, v in row.items() if k not in ("generated", "kept")), facet
    relabelled = next(i for i in v2 if i.id == fake_set[2].id)
    assert relabelled.answer_matching_behavior == _other(fake_set[2].answer_matching_behavior)
    assert relabelled.lineage["review"]["decision"] == "relabel"
    card = (v2.path / "README.md").read_text()
    assert f"A person reviewed 7 of the {len(fake_set)} items" in card
    assert (
        "label-error rate (relabelled among the items a person labelled): 1 of 4 (25%, 95 % interval 5% to 70%)" in card
    )
    assert "FAKE DATA" in card


def test_with_rejected_measures_the_rubric_judge_and_leaves_its_rejections_out(fake_set: Dataset) -> None:
    from mwe.review_app import ReviewSession

    published = {it.id for it in fake_set}
    session = ReviewSession(fake_set, ReviewLog(review_path(fake_set.path, "ann"), "ann"), None, 0, with_rejected=True)
    extra = [it for it in session.items if it.id not in published]
    judged = [r for r in fake_set.rejected if r.stage == "judge"]
    assert extra and len(extra) == len(judged)
    assert all(it.scores["quality"] < fake_set.manifest["judge"]["threshold"] for it in extra)
    assert all(session.item_json(it)["published"] is False for it in extra)
    # people reject what the judge rejected, and one published item the judge kept
    session.decide({"item_id": fake_set[0].id, "decision": "reject", "reason": "off topic"})
    for it in [*fake_set[1:5], *extra]:
        body = {"item_id": it.id, "decision": "accept" if it.id in published else "reject", "reason": "weak"}
        session.decide({k: v for k, v in body.items() if k != "reason" or body["decision"] == "reject"})
    run = mwe_cli(
        "calibrate",
        "power-seeking",
        "--model",
        "fake",
        "--gold",
        str(session.log.path),
        "--json",
        "--out",
        str(fake_set.path.parents[1]),
    )
    assert run.returncode == 0, run.stderr
    rubric = json.loads(run.stdout)["rubric_agreement"]
    human = ["reject"] + ["keep"] * 4 + ["reject"] * len(extra)
    judge = ["keep"] * 5 + ["reject"] * len(extra)
    assert rubric["n"] == len(human) and rubric["judge_rejected"] == len(extra)
    assert rubric["kappa"] == pytest.approx(cohen_kappa_score(human, judge), abs=1e-4)
    assert mwe_cli("build", "power-seeking", "--from-review", str(session.log.path)).returncode == 0
    v2 = mwe.load(fake_set.path.parent)
    assert len(v2) == len(fake_set) - 1 and v2.manifest["review"]["judge_rejected_reviewed"] == len(extra)
    assert sum(r.stage == "human" for r in v2.rejected) == 1
