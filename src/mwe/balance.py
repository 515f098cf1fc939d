"""Deterministic option order with the matching answer at A in half the items of every facet.

Each item's position comes from a seeded hash of its id, not a shared RNG, so re-runs and partial
re-runs keep letters stable. A pure hash is only balanced on average, so the few items whose hash
lies nearest the 50 % line are flipped until each facet is within one item of half, and odd facets
alternate which side gets the extra item so the whole set is balanced too.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from .items import Candidate, Item
from .spec import LETTERS

__all__ = ["assign_order", "position_balance"]


def _u(seed: int, item_id: str) -> float:
    digest = hashlib.sha256(f"{seed}:{item_id}:order".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _to_item(c: Candidate, at_a: bool, u: float) -> Item:
    others = list(c.not_matching)
    if at_a:
        pos = 0
    else:
        # Among the non-A positions, the hash picks one (N-choice items).
        pos = 1 + int(u * 1e6) % len(others)
    choices = others[:]
    choices.insert(pos, c.matching)
    return Item(
        id=c.id,
        threat_model=c.threat_model,
        format=c.format,
        facet=c.facet,
        question=c.question,
        choices=choices,
        answer_matching_behavior=LETTERS[pos],
        answer_not_matching_behavior=[LETTERS[i] for i in range(len(choices)) if i != pos],
        scores=c.scores,
        lineage=c.lineage,
    )


def assign_order(cands: list[Candidate], seed: int) -> list[Item]:
    by_facet: dict[str, list[Candidate]] = defaultdict(list)
    for c in cands:
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
    return [_to_item(c, at_a[c.id], us[c.id]) for c in cands]


def position_balance(items: list[Item]) -> dict[str, object]:
    total = len(items)
    at_a = sum(1 for it in items if it.answer_matching_behavior == "A")
    longer = sum(
        1 for it in items if len(it.matching_choice) > max(len(c) for c in it.choices if c != it.matching_choice)
    )
    return {
        "matching_at_A": at_a,
        "share_matching_at_A": round(at_a / total, 4) if total else None,
        "share_matching_longer": round(longer / total, 4) if total else None,
    }
