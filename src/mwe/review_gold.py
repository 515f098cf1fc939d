"""Human reviews as calibration gold (`mwe calibrate TM --gold <review file or version dir>`).

A reviewed item's human label is its key when accepted and the new key when relabelled; rejected
and ambiguous items carry no label and are left out of label agreement. With several reviewers an
item counts only where every reviewer who labelled it gave the same label, and each pair of
reviewers gets Cohen's κ (scikit-learn) over what they decided on the items both saw.

The rubric judge is measured against accept/reject: the judge "keeps" an item when its quality
score reaches the threshold the version was built with; a person keeps it when they accept or
relabel it (a wrong key is fixable, a bad item is not).
"""

from __future__ import annotations

import hashlib
import itertools
import math
import warnings
from pathlib import Path
from typing import Any

from .errors import UsageError
from .gold import GoldItem
from .items import Item
from .reviews import Decision, judge_rejected, read_review, reviewed_version
from .spec import ThreatModel
from .store import load

__all__ = ["human_gold", "kappa"]


def kappa(a: list[str], b: list[str]) -> float | None:
    """scikit-learn's Cohen's κ; None where it is undefined (both raters used one same category)."""
    from sklearn.metrics import cohen_kappa_score

    if not a:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score(a, b))
    return None if math.isnan(value) else round(value, 4)


def _review_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    version_dir = path / "manifest.json"
    if not version_dir.is_file():
        raise UsageError(f"{path}: give a review file (reviews/v<N>.<reviewer>.jsonl) or a version directory")
    files = sorted((path.parent / "reviews").glob(f"{path.name}.*.jsonl"))
    if not files:
        raise UsageError(
            f"{path}: no reviews of this version in {path.parent / 'reviews'}; run mwe review {path} first"
        )
    return files


def _rubric(items: dict[str, Item], per_item: dict[str, list[Decision]], threshold: float) -> dict[str, Any]:
    judge: list[str] = []
    human: list[str] = []
    for item_id, ds in per_item.items():
        votes = {d.decision != "reject" for d in ds if d.decision != "ambiguous"}
        quality = items[item_id].scores.get("quality")
        if len(votes) != 1 or not isinstance(quality, int | float):
            continue
        human.append("keep" if votes.pop() else "reject")
        judge.append("keep" if quality >= threshold else "reject")
    agree = sum(a == b for a, b in zip(judge, human, strict=True))
    return {
        "threshold": threshold,
        "n": len(judge),
        "human_rejected": human.count("reject"),
        "judge_rejected": judge.count("reject"),
        "accuracy": round(agree / len(judge), 4) if judge else None,
        "kappa": kappa(human, judge),
        "note": "κ is undefined (null) or 0 when the judge kept every reviewed item: a review of kept items alone "
        "shows how often the judge let a bad item through, not whether it rejects good ones (mwe review --with-rejected)",
    }


def human_gold(path: Path, spec: ThreatModel) -> tuple[list[GoldItem], dict[str, Any], str]:
    """The gold items, the record's human-review section, and a SHA-256 over the review files."""
    files = _review_files(path)
    versions = {reviewed_version(f)[0] for f in files}
    if len(versions) != 1:
        raise UsageError(f"{path}: the review files cover different versions ({', '.join(sorted(map(str, versions)))})")
    version_dir = versions.pop()
    ds = load(version_dir)
    if ds.manifest.threat_model != spec.name:
        raise UsageError(f"{path}: reviews a {ds.manifest.threat_model} version, not {spec.name}")
    items = {it.id: it for it in [*ds, *judge_rejected(ds)]}
    by_reviewer = {reviewed_version(f)[1]: read_review(f).current() for f in files}
    per_item: dict[str, list[Decision]] = {}
    for current in by_reviewer.values():
        for item_id, d in current.items():
            if item_id not in items:
                raise UsageError(f"{path}: item {item_id} is not in {version_dir}")
            per_item.setdefault(item_id, []).append(d)
    gold: list[GoldItem] = []
    disputed = 0
    for item_id, decisions in per_item.items():
        labels = {d.label for d in decisions if d.label is not None}
        it = items[item_id]
        if len(labels) > 1:
            disputed += 1
        if len(labels) != 1 or not it.choices:
            continue
        gold.append(GoldItem(it.question, tuple(it.choices), labels.pop(), it.statement))
    if not gold:
        raise UsageError(f"{path}: no reviewed item carries a human label yet (accept or relabel some in mwe review)")
    pairs = []
    for (ra, da), (rb, db) in itertools.combinations(sorted(by_reviewer.items()), 2):
        both = sorted(set(da) & set(db))
        a = [da[i].category for i in both]
        b = [db[i].category for i in both]
        pairs.append(
            {
                "reviewers": [ra, rb],
                "items": len(both),
                "agreement": round(sum(x == y for x, y in zip(a, b, strict=True)) / len(both), 4) if both else None,
                "kappa": kappa(a, b),
            }
        )
    digest = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    section = {
        "human_review": {
            "version": str(version_dir),
            "files": [str(f) for f in files],
            "reviewers": sorted(by_reviewer),
            "reviewed_items": len(per_item),
            "labelled_items": len(gold),
            "disputed_items": disputed,
            "left_out": "rejected and ambiguous items carry no label; disputed ones (reviewers gave different keys) are left out",
        },
        "rubric_agreement": _rubric(items, per_item, float(ds.manifest.judge.threshold or 0)),
        "inter_rater": pairs,
    }
    return gold, section, digest
