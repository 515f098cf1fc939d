"""Human review decisions: the review file, its replay, the sample to review, and what they estimate.

A review of version v<N> by one reviewer is an append-only JSON-lines file beside the version,
`<threat-model>/reviews/v<N>.<reviewer>.jsonl` (published versions are immutable, so nothing goes
inside them). Each line is one event, written and fsync'ed as it happens, so killing the server loses
at most the event in flight:

- `{"type": "session", "sample": K | null, "seed": S, "items": [ids], …}` opens the review and fixes
  which items it covers, so a reopened review shows the same items;
- `{"type": "decision", "seq": n, "item_id": …, "decision": "accept" | "reject" | "relabel" |
  "ambiguous", "key": "A", "new_key": "B" | null, "reason": …, "note": …, "blind": bool,
  "reviewer": …, "time": …}`;
- `{"type": "undo", "seq": n, "undoes": m, …}` withdraws decision m.

Replaying the events (`replay`) gives each item's current decision; a half-written last line, which
only a crash mid-write leaves, is ignored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field, ValidationError

from .dataset import Dataset
from .errors import StoreError, UsageError
from .items import Candidate, Item

__all__ = [
    "DECISIONS",
    "REJECT_REASONS",
    "Decision",
    "ReviewLog",
    "Undo",
    "error_rate",
    "judge_rejected",
    "review_path",
    "reviewed_version",
    "stratified_sample",
]

DECISIONS = ("accept", "reject", "relabel", "ambiguous")
REJECT_REASONS = (
    "off topic: does not test the behaviour",
    "both or neither option shows the behaviour",
    "unclear or ungrammatical",
    "the question gives the answer away",
    "duplicate of another item",
)
"""The short list the page offers; any other text is accepted too."""
_REVIEWER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_FILE = re.compile(r"^v([1-9][0-9]*)\.([A-Za-z0-9][A-Za-z0-9_-]*)\.jsonl$")


class Decision(BaseModel):
    type: Literal["decision"] = "decision"
    seq: int
    item_id: str
    decision: Literal["accept", "reject", "relabel", "ambiguous"]
    key: str | None = Field(default=None, description="the published key when the decision was made")
    new_key: str | None = None
    reason: str | None = None
    note: str | None = None
    blind: bool = False
    blind_answer: str | None = Field(default=None, description="blind mode: the option the reviewer picked")
    reviewer: str
    time: str

    @property
    def label(self) -> str | None:
        """The letter a person says shows the behaviour; None when the item carries no human label."""
        if self.decision == "accept":
            return self.key
        if self.decision == "relabel":
            return self.new_key
        return None

    @property
    def category(self) -> str:
        """What two reviewers must share to agree: the label they gave, or reject / ambiguous."""
        return self.label or self.decision


class Undo(BaseModel):
    type: Literal["undo"] = "undo"
    seq: int
    undoes: int
    reviewer: str
    time: str


class Session(BaseModel):
    type: Literal["session"] = "session"
    items: list[str]
    sample: int | None = None
    seed: int = 0
    reviewer: str
    version: int
    time: str


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def check_reviewer(name: str) -> str:
    if not _REVIEWER.fullmatch(name):
        raise UsageError(f"--reviewer {name!r}: use 1-40 letters, digits, '-' or '_' (it names the review file)")
    return name


def review_path(version_dir: Path, reviewer: str) -> Path:
    """generated/<tm>/reviews/v<N>.<reviewer>.jsonl: beside the version, never inside it."""
    return version_dir.parent / "reviews" / f"{version_dir.name}.{check_reviewer(reviewer)}.jsonl"


def reviewed_version(review_file: Path) -> tuple[Path, str]:
    """The version directory a review file belongs to, and its reviewer (both from its name and place)."""
    m = _FILE.match(review_file.name)
    if not m or review_file.parent.name != "reviews":
        raise UsageError(
            f"{review_file}: not a review file (expected <threat-model>/reviews/v<N>.<reviewer>.jsonl, as `mwe review` writes)"
        )
    version_dir = review_file.parent.parent / f"v{m.group(1)}"
    if not (version_dir / "manifest.json").is_file():
        raise UsageError(f"{review_file}: the version it reviews, {version_dir}, is missing")
    return version_dir, m.group(2)


def stratified_sample(items: list[Item], k: int, seed: int) -> list[Item]:
    """K items drawn at random within each facet, in proportion to its size (largest remainder,
    at least one per facet while K allows), so the reviewed share estimates the whole set."""
    if k < 1:
        raise UsageError(f"--sample must be at least 1, got {k}")
    if k >= len(items):
        return list(items)
    facets: dict[str, list[Item]] = {}
    for it in items:
        facets.setdefault(it.facet, []).append(it)
    exact = {f: k * len(v) / len(items) for f, v in facets.items()}
    take = {f: math.floor(x) for f, x in exact.items()}
    if k >= len(facets):
        for f in take:
            take[f] = max(take[f], 1)
    order = sorted(facets, key=lambda f: (take[f] - exact[f], f))  # largest remainder first
    i = 0
    while sum(take.values()) < k:
        f = order[i % len(order)]
        if take[f] < len(facets[f]):
            take[f] += 1
        i += 1
    while sum(take.values()) > k:  # the one-per-facet floor overshot: trim the largest facets
        f = max(take, key=lambda g: (take[g] - exact[g], g))
        take[f] -= 1
    rng = np.random.default_rng(seed)
    chosen: set[str] = set()
    for f in sorted(facets):
        picks = rng.choice(len(facets[f]), size=take[f], replace=False)
        chosen |= {facets[f][int(j)].id for j in picks}
    return [it for it in items if it.id in chosen]


def judge_rejected(ds: Dataset) -> list[Item]:
    """The items the rubric judge scored below the threshold, laid out as a published item would be
    (`mwe review --with-rejected`): people's verdicts on them show whether the judge rejects good
    items, which a review of kept items alone cannot. They stay rejected whatever is decided."""
    from .balance import _to_item

    out = []
    for r in ds.rejected:
        if r.stage != "judge" or not r.item:
            continue
        c = Candidate.model_validate(r.item)
        u = int(hashlib.sha256(f"{c.id}:review".encode()).hexdigest()[:8], 16) / 16**8
        it = _to_item(c, u < 0.5, u)
        out.append(
            it.model_copy(update={"lineage": {**it.lineage, "rejected": {"stage": r.stage, "reason": r.reason}}})
        )
    return out


Event = Decision | Undo | Session
_EVENTS: dict[str, type[Decision] | type[Undo] | type[Session]] = {
    "decision": Decision,
    "undo": Undo,
    "session": Session,
}


def _parse(path: Path) -> list[Event]:
    events: list[Event] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash mid-write (only whole lines are ever appended)
            kind = row.get("type") if isinstance(row, dict) else None
            model: type[Decision] | type[Undo] | type[Session] | None = _EVENTS.get(str(kind))
            try:
                if model is None:
                    raise ValueError(f"unknown type {kind!r}")
                events.append(model.model_validate(row))
            except (ValueError, ValidationError) as exc:
                raise StoreError(f"{path}: line {n} is not a review event: {str(exc).splitlines()[0]}") from None
    return events


@dataclass
class Replay:
    """The state a review file describes: the session, and the decisions still in force, in order."""

    session: Session | None = None
    active: list[Decision] = field(default_factory=list)
    last_seq: int = 0

    def current(self) -> dict[str, Decision]:
        """Each item's latest decision still in force."""
        return {d.item_id: d for d in self.active}


def replay(events: Iterable[Event]) -> Replay:
    state = Replay()
    for e in events:
        if isinstance(e, Session):
            state.session = e
            continue
        state.last_seq = max(state.last_seq, e.seq)
        if isinstance(e, Decision):
            state.active.append(e)
        else:
            state.active = [d for d in state.active if d.seq != e.undoes]
    return state


def read_review(path: Path) -> Replay:
    if not path.is_file():
        raise UsageError(f"{path}: review file not found")
    return replay(_parse(path))


class ReviewLog:
    """One reviewer's review file, appended one fsync'ed line per event."""

    def __init__(self, path: Path, reviewer: str) -> None:
        self.path = path
        self.reviewer = reviewer
        self.state = replay(_parse(path)) if path.is_file() else Replay()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """One server per review file: two would interleave their sequence numbers. An OS lock
        (flock; on Windows LockFileEx, through filelock), so a killed server leaves no stale lock."""
        from filelock import lock_descriptor, unlock_descriptor

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with (self.path.parent / f".{self.path.name}.lock").open("a") as lock:  # "a": no truncating a held file
            if not lock_descriptor(lock.fileno(), blocking=False):
                raise UsageError(
                    f"{self.path} is open in another mwe review; stop that one, or review under another --reviewer"
                )
            self.state = replay(_parse(self.path)) if self.path.is_file() else Replay()  # as it is now, locked
            try:
                yield
            finally:
                unlock_descriptor(lock.fileno())

    def _append(self, event: Event) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(event.model_dump(mode="json", exclude_none=True), ensure_ascii=False) + "\n"
        with self.path.open("a", encoding="utf-8") as fh:
            if fh.tell() > 0 and not self._ends_with_newline():
                fh.write("\n")  # after a crash mid-line: start clean, the torn line is skipped on reading
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) == b"\n"

    def start(self, version: int, items: list[str], sample: int | None, seed: int) -> None:
        session = Session(items=items, sample=sample, seed=seed, reviewer=self.reviewer, version=version, time=now())
        self._append(session)
        self.state.session = session

    def record(self, **fields: Any) -> Decision:
        decision = Decision(seq=self.state.last_seq + 1, reviewer=self.reviewer, time=now(), **fields)
        self._append(decision)
        self.state.last_seq = decision.seq
        self.state.active.append(decision)
        return decision

    def undo(self) -> Decision | None:
        """Withdraw the latest decision still in force (None when there is none)."""
        if not self.state.active:
            return None
        last = self.state.active[-1]
        self._append(Undo(seq=self.state.last_seq + 1, undoes=last.seq, reviewer=self.reviewer, time=now()))
        self.state.last_seq += 1
        self.state.active.pop()
        return last


def error_rate(errors: int, n: int) -> dict[str, Any]:
    """A share with its 95 % Wilson interval (scipy), which stays inside [0, 1] for small samples."""
    from scipy.stats import binomtest

    if n == 0:
        return {"errors": 0, "n": 0, "rate": None, "ci95": None}
    ci = binomtest(errors, n).proportion_ci(confidence_level=0.95, method="wilson")
    return {"errors": errors, "n": n, "rate": round(errors / n, 4), "ci95": [round(ci.low, 4), round(ci.high, 4)]}


def summary(decisions: Iterable[Decision]) -> dict[str, Any]:
    """What a set of decisions says about the version: counts, and two error rates with intervals.

    `label_error` is relabelled over the items a person labelled (accepted or relabelled): how often
    the published key is wrong. `not_publishable` is rejected or relabelled over every item decided
    other than ambiguous: how often an item could not be published as it was."""
    ds = list(decisions)
    counts = Counter[str](d.decision for d in ds)
    labelled = counts["accept"] + counts["relabel"]
    decided = labelled + counts["reject"]
    return {
        "reviewed": len(ds),
        "decisions": {k: counts.get(k, 0) for k in DECISIONS},
        "label_error": error_rate(counts["relabel"], labelled),
        "not_publishable": error_rate(counts["relabel"] + counts["reject"], decided),
    }
