"""Deterministic option order with the matching answer at A in half the items of every facet.

Each item's position comes from a seeded hash of its id, not a shared RNG, so re-runs and partial
re-runs keep letters stable. A pure hash is only balanced on average, so the few items whose hash
lies nearest the 50 % line are flipped until each facet is within one item of half, and odd facets
alternate which side gets the extra item so the whole set is balanced too.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from .generators import format_of
from .items import LETTERS, Candidate, Item

__all__ = ["assign_order", "balance_length_cue", "length_cue_tolerance", "matching_longer", "position_balance"]


def matching_longer(c: Candidate) -> bool:
    """The matching option is strictly the longest: a cue a model could answer from. Only items
    whose options are written per item can carry it (not Yes/No, not rubric descriptions)."""
    return c.layout == "shuffled" and len(c.matching) > max(len(o) for o in c.not_matching)


def length_cue_tolerance(n: int) -> float:
    """50 % ± 3 % of the items, but never tighter than one item (a 20-item set cannot hit 51.5 %)."""
    return max(0.03 * n, 1.0)


def balance_length_cue(
    kept: dict[str, list[Candidate]], spare: dict[str, list[Candidate]]
) -> tuple[list[Candidate], list[Candidate], bool]:
    """Swap items within a facet (keeping its quota) until the share of items whose matching
    option is the longest is within 50 % ± 3 %. `kept` and `spare` are best-first per facet.
    Returns (kept, swapped out, whether the target was met)."""
    chosen = {f: list(v) for f, v in kept.items()}
    pool = {f: list(v) for f, v in spare.items()}
    n = sum(c.layout == "shuffled" for v in chosen.values() for c in v)
    tol = length_cue_tolerance(n)
    out: list[Candidate] = []
    while True:
        longer = sum(matching_longer(c) for v in chosen.values() for c in v)
        excess = longer - n / 2
        if abs(excess) <= tol:
            return [c for v in chosen.values() for c in v], out, True
        drop_longer = excess > 0
        best: tuple[str, Candidate, Candidate] | None = None
        for facet, group in chosen.items():
            victims = [c for c in group if c.layout == "shuffled" and matching_longer(c) == drop_longer]
            takers = [c for c in pool.get(facet, []) if c.layout == "shuffled" and matching_longer(c) != drop_longer]
            if victims and takers:
                # the swap that loses the least judged quality
                victim, taker = victims[-1], takers[0]
                loss = float(victim.scores.get("quality", 0)) - float(taker.scores.get("quality", 0))
                if best is None or loss < float(best[1].scores.get("quality", 0)) - float(
                    best[2].scores.get("quality", 0)
                ):
                    best = (facet, victim, taker)
        if best is None:
            return [c for v in chosen.values() for c in v], out, False
        facet, victim, taker = best
        chosen[facet].remove(victim)
        chosen[facet].append(taker)
        pool[facet].remove(taker)
        out.append(victim)


def _u(seed: int, item_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{item_id}:order".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _to_item(c: Candidate, at_a: bool, u: float) -> Item:
    common: dict[str, Any] = {
        "id": c.id,
        "threat_model": c.threat_model,
        "format": c.format,
        "facet": c.facet,
        "question": c.question,
        "scores": c.scores,
        "lineage": c.lineage,
        **c.fields,  # what the format adds to its published items (statement, conditions, a plugin's own)
    }
    if c.layout == "rubric":  # the two answers are the rubric's descriptions
        return Item(**common, choices=[], rubric={"matching": c.matching, "not_matching": c.not_matching[0]})
    if c.layout == "fixed":
        choices = ["Yes", "No"]
        pos = choices.index(c.matching)
    else:
        others = list(c.not_matching)
        # At A, or among the non-A positions the hash picks one (N-choice items).
        pos = 0 if at_a else 1 + int(u * 1e6) % len(others)
        choices = others[:]
        choices.insert(pos, c.matching)
    return Item(
        **common,
        choices=choices,
        answer_matching_behavior=LETTERS[pos],
        answer_not_matching_behavior=[LETTERS[i] for i in range(len(choices)) if i != pos],
    )


def assign_order(cands: list[Candidate], seed: int) -> list[Item]:
    by_facet: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
        if c.layout == "shuffled":
            by_facet[c.facet].append(c)
    at_a: dict[str, bool] = {}
    us: dict[str, float] = {}
    odd_turn = 0
    for facet in sorted(by_facet):
        group = by_facet[facet]
        target = len(group) // 2
        if len(group) % 2:
            target += odd_turn
            odd_turn ^= 1
        for c in group:
            us[c.id] = _u(seed, c.id)
            at_a[c.id] = us[c.id] < 0.5
        count = sum(at_a[c.id] for c in group)
        # Flip the items closest to the boundary on the over-full side.
        if count > target:
            flip = sorted((c for c in group if at_a[c.id]), key=lambda c: 0.5 - us[c.id])
            for c in flip[: count - target]:
                at_a[c.id] = False
        elif count < target:
            flip = sorted((c for c in group if not at_a[c.id]), key=lambda c: us[c.id] - 0.5)
            for c in flip[: target - count]:
                at_a[c.id] = True
    return [_to_item(c, at_a.get(c.id, True), us.get(c.id, 0.0)) for c in cands]


def _longer(it: Item) -> bool:
    m = it.matching_choice
    return m is not None and len(m) > max(len(c) for c in it.choices if c != m)


def position_balance(items: list[Item]) -> dict[str, object]:
    """Over items with choices; the length cue over items whose options are written per item
    (their format's layout is "shuffled": persona Yes/No and open-ended rubrics have no length
    to balance)."""
    with_choices = [it for it in items if it.answer_matching_behavior is not None]
    total = len(with_choices)
    at_a = sum(1 for it in with_choices if it.answer_matching_behavior == "A")
    written = [it for it in with_choices if format_of(it).layout == "shuffled"]
    longer = sum(_longer(it) for it in written)
    return {
        "matching_at_A": at_a,
        "share_matching_at_A": round(at_a / total, 4) if total else None,
        "matching_longer": longer,
        "share_matching_longer": round(longer / len(written), 4) if written else None,
        "length_cue_within_target": abs(longer - len(written) / 2) <= length_cue_tolerance(len(written))
        if written
        else True,
    }
