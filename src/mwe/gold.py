"""Gold items: human-labelled questions to hold a judge against, read from files.

Gold files in the anthropics/evals layout are read as they are (options inline in `question`,
answers as " (A)"; persona files as Yes/No); mwe's own items.jsonl works too. The human-written
sets of Perez et al. 2022 (anthropics/evals advanced-ai-risk/human_generated_evals, CC-BY-4.0),
shipped in src/mwe/_gold, are the built-in gold for the threat models they match. This module
only reads: `mwe.calibration` measures a judge against the items, `mwe.review_gold` makes them
from `mwe review` decisions.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import SpecError, UsageError
from .items import LETTERS

__all__ = ["BUILTIN", "INVERTED", "YES_NO", "GoldItem", "builtin_gold", "gold_dirs", "load_gold", "parse_inline"]

BUILTIN = {
    "power-seeking": "power-seeking-inclination.jsonl",
    "corrigibility-more-hhh": "corrigible-more-HHH.jsonl",
    "corrigibility-neutral-hhh": "corrigible-neutral-HHH.jsonl",
    "corrigibility-less-hhh": "corrigible-less-HHH.jsonl",
    "self-preservation": "survival-instinct.jsonl",
    "non-myopia": "myopic-reward.jsonl",
}
INVERTED = {"power-seeking-inclination.jsonl", "survival-instinct.jsonl", "wealth-seeking-inclination.jsonl"}
"""Human-written files whose `answer_matching_behavior` is the answer *without* the behaviour (read
them: "Would you like to interview for the board?" → matching "No"); their other answer is used."""
_OPTION = re.compile(r"^\s*\(([A-H])\)\s*(.*)$")


@dataclass(frozen=True)
class GoldItem:
    question: str
    choices: tuple[str, ...]
    answer: str  # letter of the option a human marked as showing the behaviour
    statement: str | None = None  # persona items: the statement asked about (choices Yes/No)


YES_NO = ("Yes", "No")


def _persona(row: dict[str, Any], inverted: bool) -> GoldItem | None:
    """An anthropics/evals persona row ("Is the following statement something you would say?",
    answers " Yes"/" No"): choices Yes/No, the statement kept for the judge."""
    key = row["answer_not_matching_behavior"] if inverted else row["answer_matching_behavior"]
    key = str(key[0] if isinstance(key, list) and len(key) == 1 else key).strip()
    if key not in YES_NO:
        return None
    statement = str(row.get("statement") or "").strip() or None
    return GoldItem(str(row["question"]).strip(), YES_NO, "AB"[YES_NO.index(key)], statement)


def parse_inline(text: str) -> tuple[str, list[str]]:
    """anthropics/evals: "Question: …\\n\\nChoices:\\n (A) …\\n (B) …\\n\\nAnswer:"."""
    body = text.strip().removeprefix("Question:").strip()
    body = re.sub(r"\n\s*Answer:\s*$", "", body)
    stem, _, rest = body.partition("Choices:")
    if not rest:
        stem, rest = "", body
    options: list[str] = []
    lines: list[str] = []
    for line in rest.splitlines():
        m = _OPTION.match(line)
        if m:
            options.append(m.group(2).strip())
        elif options and line.strip():
            options[-1] += " " + line.strip()
        elif not options and line.strip():
            lines.append(line.strip())
    question = (stem.strip() + (" " + " ".join(lines) if lines else "")).strip()
    return question, options


def load_gold(path: Path, inverted: bool | None = None) -> list[GoldItem]:
    """`inverted` (default: known from the file name) takes `answer_not_matching_behavior` as the
    option that shows the behaviour; items where that is not a single option are skipped."""
    if inverted is None:
        inverted = path.name in INVERTED
    if not path.is_file():
        raise UsageError(f"{path}: gold file not found")
    items: list[GoldItem] = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if "choices" not in row and "statement" in row:  # anthropics/evals persona layout
                    persona = _persona(row, inverted)
                    if persona is None:
                        raise SpecError(str(path), "a persona item needs answers Yes and No", field=f"line {n}")
                    items.append(persona)
                    continue
                if "choices" in row:  # mwe's own layout
                    question, options = row["question"], list(row["choices"])
                else:
                    question, options = parse_inline(row["question"])
                key = row["answer_not_matching_behavior"] if inverted else row["answer_matching_behavior"]
                if isinstance(key, list):
                    if len(key) != 1:
                        continue
                    key = key[0]
                answer = str(key).strip().strip("()")
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise SpecError(str(path), f"not a gold item ({exc})", field=f"line {n}") from None
            if len(options) < 2 or answer not in LETTERS[: len(options)]:
                raise SpecError(
                    str(path), "needs at least two options and a matching letter among them", field=f"line {n}"
                )
            items.append(GoldItem(question, tuple(options), answer, row.get("statement")))
    if not items:
        raise UsageError(f"{path}: no gold items")
    return items


def gold_dirs() -> list[Path]:
    """$MWE_GOLD_DIR, then the copies shipped with mwe (src/mwe/_gold, CC-BY-4.0, attributed there)."""
    dirs = [Path(os.environ["MWE_GOLD_DIR"])] if os.environ.get("MWE_GOLD_DIR") else []
    return [*dirs, Path(__file__).resolve().parent / "_gold"]


def builtin_gold(threat_model: str) -> Path | None:
    name = BUILTIN.get(threat_model)
    if name is None:
        return None
    return next((d / name for d in gold_dirs() if (d / name).is_file()), None)
