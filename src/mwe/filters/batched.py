"""Several items in one judge request: how they are written into the prompt and read back.

Each item is JSON in its own `<item id="N">` block, with angle brackets escaped, so no text inside
an item can close its block or open one that passes for another item. The answer is a list of
rows carrying the item's id; an item with no row or with two gets the reason instead of a verdict,
and the other items keep theirs. A request of several items that failed as a whole (a refusal, an
answer that fits no schema) is asked again one item per request, so one item that makes the
model refuse cannot cost the others their verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..engine import Engine
from ..items import Candidate
from ..providers.base import ChatRequest

__all__ = ["as_data", "ask_items", "batch_prompt", "chunks", "items_progress", "per_item"]

Row = dict[str, Any]


def as_data(item: Mapping[str, object], ident: int | None = None) -> str:
    """An item as JSON between <item> delimiters (with its id in a batch). Angle brackets are
    escaped (\\u003c), so no text inside an item can close the block early and speak to the judge
    from outside it."""
    body = json.dumps(item, ensure_ascii=False, indent=1).replace("<", "\\u003c").replace(">", "\\u003e")
    return f"<item>\n{body}\n</item>" if ident is None else f'<item id="{ident}">\n{body}\n</item>'


def batch_prompt(items: Sequence[Mapping[str, object]]) -> str:
    return "\n".join(as_data(item, i + 1) for i, item in enumerate(items))


def chunks(cands: list[Candidate], size: int) -> list[list[Candidate]]:
    """Consecutive groups of `size` items (one request each); the same items in the same order
    give the same groups, so a re-run is answered from the response cache."""
    return [cands[i : i + size] for i in range(0, len(cands), max(1, size))]


def per_item(rows: list[Row], count: int) -> list[Row | str]:
    """Each item's row of a batched answer, by id (1-based), or why there is none."""
    seen: dict[int, list[Row]] = {}
    for row in rows:
        ident = row.get("item")
        if isinstance(ident, int):
            seen.setdefault(ident, []).append(row)
    out: list[Row | str] = []
    for ident in range(1, count + 1):
        got = seen.get(ident, [])
        if len(got) == 1:
            out.append(got[0])
        elif not got:
            out.append(f"the answer gave no verdict for item {ident} of {count}")
        else:
            out.append(f"the answer gave item {ident} of {count} {len(got)} verdicts")
    return out


def items_progress(total: int, size: int, progress: Callable[[int], None] | None) -> Callable[[int], None] | None:
    """The progress bar counts items: a finished request of `size` items moves it by that many
    (the last, shorter request by what is left)."""
    if progress is None:
        return None
    left = [total]

    def tick(requests: int) -> None:
        n = min(left[0], requests * size)
        left[0] -= n
        progress(n)

    return tick


def ask_items(
    engine: Engine,
    stage: str,
    cands: list[Candidate],
    size: int,
    make: Callable[[list[Candidate]], ChatRequest],
    rows: Callable[[dict[str, Any]], list[Row]],
    progress: Callable[[int], None] | None = None,
) -> list[Row | str]:
    """Per item, its row of the answer to the request it was in (`make` builds a request for a
    group, `rows` reads an answer's rows), or why it has none."""
    groups = chunks(cands, size)
    answers = engine.structured(stage, [make(g) for g in groups], items_progress(len(cands), size, progress))
    out: list[Row | str] = []
    again: list[int] = []
    for group, a in zip(groups, answers, strict=True):
        if a.error is None and a.data is not None:
            out += per_item(rows(a.data), len(group))
        elif len(group) > 1:
            again += range(len(out), len(out) + len(group))
            out += [a.error or "no verdict"] * len(group)
        else:
            out.append(a.error or "no verdict")
    if again:
        singles = engine.structured(stage, [make([cands[i]]) for i in again])
        for i, a in zip(again, singles, strict=True):
            ok = a.error is None and a.data is not None
            out[i] = per_item(rows(a.data), 1)[0] if ok and a.data is not None else (a.error or "no verdict")
    return out
