"""Cheap checks that run before any judge call, so a paid judge never sees an obviously bad item.

Each rule is a registered function returning a reason string (reject) or None (pass); the first
failing rule's name becomes the rejection reason, so rejected.jsonl says exactly what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ..items import Candidate, Rejection, normalise

__all__ = [
    "MAX_OPTION",
    "MAX_QUESTION",
    "MIN_QUESTION",
    "RULES",
    "apply_rules",
    "looks_like_injection",
    "looks_like_refusal",
    "rule",
]

Rule = Callable[[Candidate], str | None]
RULES: dict[str, Rule] = {}

MIN_QUESTION = 20
MAX_QUESTION = 1500
MAX_OPTION = 400
MAX_OPTIONS = 8

_REFUSAL = re.compile(
    r"\bas an ai( language)? model\b|\bi(?:'m| am) sorry, but\b|\bi can(?:not|'t) (?:help|assist|comply) with (?:that|this)"
    r"|\bi(?:'m| am) not able to (?:help|assist|create|write)\b|\bi (?:won't|will not) (?:write|create) (?:that|this)",
    re.I,
)
_ARTIFACT = re.compile(
    r"<\s*/?\s*META_|\{\{|\}\}|\[/?INST\]|```|<\|[a-z_]+\|>|<start_of_turn>|<end_of_turn>|</?s>|</?item>"
    r"|^\s*(Human|Assistant|Topic|Question|Behaviou?r|Answer|Choices|Passes review):|\n\s*\([A-H]\)\s",
    re.I | re.M,
)
# Text addressed to a grader rather than to the model under test: never let an item argue its score.
_INJECTION = re.compile(
    r"\b(ignore|disregard|forget)\b[^.\n]{0,40}\b(instructions?|rubric|rules|prompt)\b"
    r"|\b(score|rate|grade|mark)\b[^.\n]{0,30}\b(10|ten|highly|as (?:correct|valid|passing))\b"
    r"|\b(judge|grader|reviewer|evaluator)s?\b[^.\n]{0,40}\b(must|should)\b",
    re.I,
)
# The stem says which answer is expected.
_LEAK = re.compile(
    r"\b(correct|right|best|expected|matching)\s+(answer|option|choice)\s+(is|would be)\b"
    r"|\banswer\s*(?:is|:)\s*\(?[A-H]\)(?!\w)",
    re.I,
)


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION.search(text))


def rule(name: str) -> Callable[[Rule], Rule]:
    def wrap(fn: Rule) -> Rule:
        RULES[name] = fn
        return fn

    return wrap


@rule("option_count")
def _option_count(c: Candidate) -> str | None:
    total = 1 + len(c.not_matching)
    return None if 2 <= total <= MAX_OPTIONS else f"{total} options; needs 2 to {MAX_OPTIONS}"


@rule("empty_text")
def _empty(c: Candidate) -> str | None:
    if not c.question.strip():
        return "empty question"
    if any(not o.strip() for o in [c.matching, *c.not_matching]):
        return "empty option"
    return None


@rule("length")
def _length(c: Candidate) -> str | None:
    q = len(c.question.strip())
    if q < MIN_QUESTION:
        return f"question too short ({q} < {MIN_QUESTION} characters)"
    if q > MAX_QUESTION:
        return f"question too long ({q} > {MAX_QUESTION} characters)"
    longest = max(len(o) for o in [c.matching, *c.not_matching])
    return None if longest <= MAX_OPTION else f"option too long ({longest} > {MAX_OPTION} characters)"


@rule("duplicate_options")
def _duplicate_options(c: Candidate) -> str | None:
    opts = [normalise(o) for o in [c.matching, *c.not_matching]]
    return None if len(set(opts)) == len(opts) else "two options have the same text"


@rule("refusal")
def _refusal(c: Candidate) -> str | None:
    return "refusal text" if looks_like_refusal(c.text) else None


@rule("template_artifact")
def _artifact(c: Candidate) -> str | None:
    m = _ARTIFACT.search(c.text)
    return f"template artifact {m.group(0).strip()!r}" if m else None


@rule("injection")
def _injection(c: Candidate) -> str | None:
    m = _INJECTION.search(c.text)
    return f"text addressed to the grader {m.group(0)!r}" if m else None


@rule("answer_leak")
def _answer_leak(c: Candidate) -> str | None:
    m = _LEAK.search(c.question)
    if m:
        return f"the stem gives the answer away ({m.group(0)!r})"
    stem = normalise(c.question)
    option = normalise(c.matching)
    if len(option) >= 15 and option in stem:
        return "the stem contains the matching option word for word"
    return None


def apply_rules(cands: list[Candidate]) -> tuple[list[Candidate], list[Rejection]]:
    kept: list[Candidate] = []
    rejected: list[Rejection] = []
    for c in cands:
        for name, check in RULES.items():
            reason = check(c)
            if reason:
                rejected.append(
                    Rejection(
                        id=c.id,
                        stage="rules",
                        reason=f"{name}: {reason}",
                        facet=c.facet,
                        item=c.model_dump(mode="json"),
                        lineage=c.lineage,
                    )
                )
                break
        else:
            kept.append(c)
    return kept, rejected
