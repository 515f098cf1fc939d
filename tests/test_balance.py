from __future__ import annotations

from collections import Counter

from mwe.balance import assign_order, position_balance

from .helpers import cand


def _cands(n: int, facets: tuple[str, ...] = ("a", "b", "c")) -> list:  # type: ignore[type-arg]
    return [
        cand(f"Question number {i} about something quite specific?", facet=facets[i % len(facets)]) for i in range(n)
    ]


def test_matching_at_a_in_half_of_every_facet() -> None:
    items = assign_order(_cands(31), seed=3)
    per_facet = Counter((i.facet, i.answer_matching_behavior) for i in items)
    for facet in "abc":
        a, b = per_facet[(facet, "A")], per_facet[(facet, "B")]
        assert abs(a - b) <= 1
    total_a = sum(1 for i in items if i.answer_matching_behavior == "A")
    assert total_a in (15, 16)
    assert position_balance(items)["matching_at_A"] == total_a


def test_order_is_deterministic_and_keeps_content() -> None:
    cands = _cands(10)
    first, second = assign_order(cands, seed=1), assign_order(cands, seed=1)
    assert [i.model_dump() for i in first] == [i.model_dump() for i in second]
    for c, item in zip(cands, first, strict=True):
        assert item.matching_choice == c.matching
        assert set(item.choices) == {c.matching, *c.not_matching}
        assert item.answer_not_matching_behavior == [x for x in "AB" if x != item.answer_matching_behavior]


def test_adding_an_item_keeps_most_letters() -> None:
    cands = _cands(40, facets=("a",))
    before = {i.id: i.answer_matching_behavior for i in assign_order(cands, seed=0)}
    after = {i.id: i.answer_matching_behavior for i in assign_order([*cands, *_cands(42, ("a",))[40:]], seed=0)}
    changed = sum(before[k] != after[k] for k in before)
    assert changed <= 2
