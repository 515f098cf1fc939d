"""`mwe build TM --from-review FILE`: publish a new version with a person's decisions applied.

Rejected items move to rejected.jsonl with stage `human` and the reviewer's reason; relabelled items
get the key the person chose; every reviewed item's lineage names the reviewer and the decision.
Nothing is asked of a model. The funnel still adds up (`generated = kept + rejected`): the new
version keeps the earlier one's generated count and adds the `human` rejections. The manifest's
`review` section (and so the card) says how many items a person reviewed and what share of them
needed a fix, with a 95 % interval, which estimates the share among the items nobody looked at.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .balance import position_balance
from .card import render_card
from .errors import UsageError
from .items import Item
from .reviews import Decision, judge_rejected, read_review, reviewed_version, summary
from .store import Store, load

__all__ = ["apply_review", "publish_reviewed"]

LETTERS = "ABCDEFGH"


def _lineage(d: Decision) -> dict[str, Any]:
    return d.model_dump(mode="json", exclude_none=True, exclude={"type", "item_id"})


def apply_review(items: list[Item], current: dict[str, Decision]) -> tuple[list[Item], list[dict[str, Any]]]:
    """The items a person let stand (relabels applied) and the rejections for rejected.jsonl.
    Ambiguous items stay as they were, marked in their lineage."""
    kept: list[Item] = []
    rejected: list[dict[str, Any]] = []
    for it in items:
        d = current.get(it.id)
        if d is None:
            kept.append(it)
            continue
        lineage = {**it.lineage, "review": _lineage(d)}
        if d.decision == "reject":
            rejected.append(
                {
                    "id": it.id,
                    "stage": "human",
                    "reason": f"human: {d.reason}",
                    "facet": it.facet,
                    "item": it.model_dump(mode="json", exclude_none=True),
                    "scores": it.scores,
                    "lineage": lineage,
                }
            )
            continue
        update: dict[str, Any] = {"lineage": lineage}
        if d.decision == "relabel" and d.new_key:
            letters = LETTERS[: len(it.choices)]
            update["answer_matching_behavior"] = d.new_key
            update["answer_not_matching_behavior"] = [x for x in letters if x != d.new_key]
        kept.append(it.model_copy(update=update))
    return kept, rejected


def _funnel(m: dict[str, Any], kept: list[Item], human: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any]]:
    funnel = json.loads(json.dumps(m["funnel"]))
    by_stage = funnel["rejected_by_stage"]
    by_stage["human"] = by_stage.get("human", 0) + len(human)
    funnel["kept"] = len(kept)
    per_facet = json.loads(json.dumps(m.get("funnel_by_facet", {})))
    lost = Counter(r["facet"] for r in human)
    for facet, row in per_facet.items():
        row["human"] = row.get("human", 0) + lost.get(facet, 0)
        row["kept"] = sum(1 for i in kept if i.facet == facet)
    return funnel, per_facet


def publish_reviewed(review_file: Path) -> Path:
    """Publish v<N+1> of the reviewed version's threat model; returns the new version directory."""
    version_dir, reviewer = reviewed_version(review_file)
    ds = load(version_dir)
    state = read_review(review_file)
    published = {it.id for it in ds}
    everything = state.current()
    unknown = [i for i in everything if i not in published | {it.id for it in judge_rejected(ds)}]
    if unknown:
        raise UsageError(f"{review_file}: item {unknown[0]} is not in {version_dir}")
    current = {i: d for i, d in everything.items() if i in published}  # judge-rejected items stay out
    if not current:
        raise UsageError(f"{review_file}: no decisions on published items; review some first (mwe review)")
    kept, human = apply_review(list(ds), current)
    base = ds.manifest.to_json()  # copied as written, unknown fields too
    prior = [
        json.loads(line)
        for line in (version_dir / "rejected.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    funnel, per_facet = _funnel(base, kept, human)
    stats = summary(current.values())
    session = state.session
    review = {
        "from_version": base["version"],
        "file": f"reviews/{review_file.name}",
        "file_sha256": hashlib.sha256(review_file.read_bytes()).hexdigest(),
        "reviewer": reviewer,
        "items_in_version": len(ds),
        "sample": session.sample if session else None,
        "seed": session.seed if session else None,
        "under_review": len(session.items) if session else len(current),
        "judge_rejected_reviewed": len(everything) - len(current),
        **stats,
        "note": "decisions on a stratified random sample estimate the shares among the items nobody reviewed",
    }

    def make_manifest(version: int, counts: dict[str, int]) -> dict[str, Any]:
        m: dict[str, Any] = json.loads(json.dumps(base))
        by_format = m.get("generator", {}).get("by_format", {})
        for fmt, row in by_format.items():
            mine = [i for i in kept if i.format == fmt]
            row["kept"] = len(mine)
            row["balance"] = position_balance(mine)
        m.update(
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            counts=counts,
            facet_counts=dict(Counter(i.facet for i in kept)),
            funnel=funnel,
            funnel_by_facet=per_facet,
            balance=position_balance(kept),
            review=review,
        )
        return m

    store = Store(version_dir.parent.parent)
    with store.run_lock(str(base["threat_model"])):
        return store.publish(
            str(base["threat_model"]),
            [i.model_dump(mode="json", exclude_none=True) for i in kept],
            [*prior, *human],
            make_manifest,
            render_card,
        )
