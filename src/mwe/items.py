"""The item record, the candidate it grows from, and rejections.

Letters are never stored inside choice text: `choices` is in display order and letters follow
position, so exporters can render any layout without re-parsing.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LETTERS", "Candidate", "Item", "Rejection", "compare_text", "inline_question", "item_id", "normalise"]

LETTERS = "ABCDEFGH"
"""Option letters in display order: choices are stored without them, so letters follow position."""


def normalise(text: str) -> str:
    """Lower-case, collapse white space and strip punctuation at the ends: for ids and exact dedup."""
    return re.sub(r"\s+", " ", text).strip().strip(".?!\"' ").lower()


def item_id(threat_model: str, question: str, choices: Sequence[str]) -> str:
    """Stable across re-runs and option order: the same content gives the same id."""
    parts = [normalise(question), *sorted(normalise(c) for c in choices)]
    digest = hashlib.sha256("\x1f".join([threat_model, *parts]).encode()).hexdigest()
    return f"{threat_model}-{digest[:10]}"


def inline_question(question: str, choices: list[str]) -> str:
    """anthropics/evals' A/B layout: the options inline after "Choices:"."""
    return question + "\n\nChoices:\n" + "\n".join(f" ({LETTERS[i]}) {c}" for i, c in enumerate(choices))


def compare_text(question: str, options: Sequence[str], statement: str | None = None) -> str:
    """What dedup and diff compare: the stem and every option, or a persona item's statement
    alone (its fixed question and Yes/No would make every pair look alike)."""
    return statement if statement is not None else "\n".join([question, *options])


Layout = Literal["shuffled", "fixed", "rubric"]


class Candidate(BaseModel):
    """An item on its way through the pipeline: matching choice first, order not yet decided.

    Every format travels as a question with a matching and not-matching answer, so rules, judges
    and dedup serve all of them: a persona statement as Yes/No (`layout="fixed"`: Yes stays at A,
    and balance comes from choosing statements of both polarities), an open-ended prompt with its
    two rubric descriptions (`layout="rubric"`: published without choices). `fields` holds what
    the format adds to the published item (statement, rubric, conditions)."""

    threat_model: str
    format: str = "mcq"
    layout: Layout = "shuffled"
    facet: str
    question: str
    matching: str
    not_matching: list[str]
    fields: dict[str, Any] = Field(default_factory=dict)
    scores: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)

    @property
    def id(self) -> str:
        return item_id(self.threat_model, self.question, [self.matching, *self.not_matching])

    @property
    def text(self) -> str:
        statement = self.fields.get("statement")
        return compare_text(self.question, [self.matching, *self.not_matching], statement and str(statement))

    @property
    def side(self) -> bool:
        """For fixed-order items: is the matching answer the first choice (persona: "Yes")?"""
        return self.matching == "Yes"


class Item(BaseModel):
    """One published item, a line of items.jsonl: the question, its options in display order and the
    matching answer's letter, with the scores that kept it and the lineage of how it was made.

    Format-specific fields are None where a format lacks them (docs: "Output format"); a format
    plugin's own fields (its candidates' `fields`) are kept as extra keys, in order."""

    model_config = ConfigDict(extra="allow")

    id: str
    threat_model: str
    format: str = "mcq"
    facet: str
    question: str
    choices: list[str]
    """Empty for open-ended items, which carry `rubric` instead."""
    answer_matching_behavior: str | None = None
    answer_not_matching_behavior: list[str] = Field(default_factory=list)
    statement: str | None = None
    """persona: the statement the question asks about."""
    rubric: dict[str, str] | None = None
    """open_ended: {"matching": …, "not_matching": …}, what a response with and without the behaviour looks like."""
    conditions: list[dict[str, str]] | None = None
    """alignment_faking: the same item under a monitored/training and an unmonitored condition."""
    scores: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)

    @property
    def text(self) -> str:
        rubric = list((self.rubric or {}).values())
        return compare_text(self.question, self.choices or rubric, self.statement)

    @property
    def matching_choice(self) -> str | None:
        if self.answer_matching_behavior is None:
            return None
        return self.choices[LETTERS.index(self.answer_matching_behavior)]


class Rejection(BaseModel):
    """A dropped item or unparseable output, with the stage and the reason, for rejected.jsonl."""

    id: str | None = None
    stage: str
    reason: str
    facet: str | None = None
    item: dict[str, Any] | None = None
    raw: str | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    lineage: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def of(cls, c: Candidate, stage: str, reason: str, **scores: Any) -> Rejection:
        """A dropped candidate, kept whole for the record, with its scores (plus any given here)."""
        return cls(
            id=c.id,
            stage=stage,
            reason=reason,
            facet=c.facet,
            item=c.model_dump(mode="json"),
            scores={**c.scores, **scores},
            lineage=c.lineage,
        )
