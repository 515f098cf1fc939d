"""Readers for `mwe audit`: any eval set as one shape (stem, options, which option is keyed).

Layouts, told apart per row by their fields:

- `mwe`: a published version, a `generated/<threat-model>` folder, or an items.jsonl
  (`question`, `choices`, `answer_matching_behavior` as a letter);
- `evals-ab` (anthropics/evals A/B): `question` with the options inline (" (A) …") and
  `answer_matching_behavior` " (A)"; when the answers are " Yes"/" No" the options are Yes and No;
- `evals-persona` (anthropics/evals persona): `statement` with " Yes"/" No" answers;
- `inspect`: `input` (text or chat messages), optional `choices`, `target` as a letter or an option.

A folder that is not a dataset stands for every *.jsonl file in it. A row that fits no layout is an
error naming the file and line, not a silent skip: an audit that drops what it cannot read would
report figures for a set it did not see.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UsageError
from .gold import parse_inline
from .items import compare_text
from .spec import LETTERS

__all__ = ["AuditItem", "Source", "read_sources"]

_YES_NO = ("Yes", "No")


@dataclass(frozen=True)
class AuditItem:
    question: str
    options: tuple[str, ...]
    matching: int | None
    """Index of the option keyed as showing the behaviour; None for items without options."""
    statement: str | None = None

    @property
    def text(self) -> str:
        """What duplicates are judged on, as dedup does: stem and options, or a persona statement."""
        return compare_text(self.question, list(self.options), self.statement)

    @property
    def fixed(self) -> bool:
        """Options that are the same labels in every item (Yes/No): they carry no length or wording
        cue, so only the position figure applies to them."""
        return sorted(o.strip().strip(".").capitalize() for o in self.options) == sorted(_YES_NO)

    @property
    def says_yes(self) -> bool | None:
        """For Yes/No items: is the keyed answer Yes? (Their balance is this, not the letter.)"""
        if not self.fixed or self.matching is None:
            return None
        return self.options[self.matching].strip().strip(".").capitalize() == "Yes"


@dataclass(frozen=True)
class Source:
    name: str
    layout: str
    items: list[AuditItem]


def _letter(value: Any, width: int) -> int | None:
    """ " (A)", "A", ["(B)"] → an option index within `width`; None otherwise."""
    if isinstance(value, list):
        value = value[0] if len(value) == 1 else None
    core = str(value).strip().strip("()").strip() if value is not None else ""
    return LETTERS.index(core) if len(core) == 1 and core in LETTERS[:width] else None


def _yes_no(answer: Any) -> int | None:
    word = str(answer).strip().strip(".").capitalize()
    return _YES_NO.index(word) if word in _YES_NO else None


def _inline(text: str, answer: Any) -> tuple[str, AuditItem]:
    yes_no = _yes_no(answer)
    if yes_no is not None:
        return "evals-ab", AuditItem(text.strip(), _YES_NO, yes_no)
    stem, options = parse_inline(text)
    return "evals-ab", AuditItem(stem, tuple(options), _letter(answer, len(options)))


def _input_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):  # chat messages: what the model is asked
        return "\n\n".join(
            str(m.get("content", "")) for m in value if isinstance(m, dict) and m.get("role") != "system"
        )
    raise TypeError("input is neither text nor a list of messages")


def _row(row: dict[str, Any]) -> tuple[str, AuditItem]:
    """One JSON row as (layout, item); KeyError/TypeError/ValueError when it fits no layout."""
    if "input" in row and "target" in row:
        text, choices = _input_text(row["input"]), [str(c) for c in row.get("choices") or []]
        if not choices and "\n (A)" in text:
            return _inline(text, row["target"])
        target = row["target"]
        at = _letter(target, len(choices))
        if at is None and isinstance(target, str) and target in choices:
            at = choices.index(target)
        return "inspect", AuditItem(text, tuple(choices), at if choices else None)
    if "choices" in row and "question" in row:
        choices = [str(c) for c in row["choices"]]
        answer = row.get("answer_matching_behavior")
        at = _letter(answer, len(choices)) if answer else None
        return "mwe", AuditItem(str(row["question"]), tuple(choices), at, row.get("statement"))
    if "statement" in row:
        at = _yes_no(row["answer_matching_behavior"])
        if at is None:
            raise ValueError("a persona answer must be Yes or No")
        return "evals-persona", AuditItem(str(row["question"]), _YES_NO, at, str(row["statement"]))
    return _inline(str(row["question"]), row["answer_matching_behavior"])


def _read_jsonl(path: Path) -> Source:
    items: list[AuditItem] = []
    layouts: set[str] = set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read it ({exc})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            layout, item = _row(json.loads(line))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as exc:
            raise UsageError(
                f"{path}: line {n} is not an item of a known layout ({type(exc).__name__}: {exc}); mwe audit reads "
                "mwe items, anthropics/evals A/B or persona rows, and Inspect samples (input, choices, target)"
            ) from None
        layouts.add(layout)
        items.append(item)
    return Source(str(path), " + ".join(sorted(layouts)) or "empty", items)


def _read_dataset(path: Path) -> Source:
    from .store import load

    ds = load(path)
    items = [
        AuditItem(
            i.question,
            tuple(i.choices),
            LETTERS.index(i.answer_matching_behavior) if i.answer_matching_behavior else None,
            i.statement,
        )
        for i in ds
    ]
    return Source(str(ds.path), "mwe" + (" (FAKE DATA)" if ds.manifest.fake else ""), items)


def read_sources(paths: list[Path]) -> list[Source]:
    """Every file the paths name, read: dataset folders whole, other folders file by file."""
    sources: list[Source] = []
    for path in paths:
        if path.is_file():
            sources.append(_read_jsonl(path))
        elif path.is_dir() and any(p.is_file() for p in [path / "manifest.json", *path.glob("v*/manifest.json")]):
            sources.append(_read_dataset(path))
        elif path.is_dir():
            files = sorted(path.glob("*.jsonl"))
            if not files:
                raise UsageError(f"{path}: no dataset version and no *.jsonl file in this folder")
            sources += [_read_jsonl(f) for f in files]
        else:
            raise UsageError(f"{path}: no such file or folder")
    return sources
