"""Cheap checks that run before any judge call, so a paid judge never sees an obviously bad item.

Each rule is a registered function of the candidate and a `RuleContext` (what the request said and
how its answer ended) returning a reason string (reject) or None (pass); the first failing rule's
name becomes the rejection reason, so rejected.jsonl says exactly what was wrong. Rules registered
with `after_label=True` need the label check's `label_confidence` and run once it is known.

The thresholds were measured, not guessed (docs: "Output format"; benchmarks/rules_thresholds.py):
a copied span of `LEAK_MIN_WORDS` words or more separates prompt leakage from good items, and the
mid-sentence endings below flag 0.27 % of the 50,067 options of anthropics/evals advanced-ai-risk,
nearly all of them cut-off or garbled text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from functools import lru_cache
from typing import TYPE_CHECKING

from .._refusal import looks_like_refusal
from .._registry import Registry
from ..items import Candidate, Rejection, normalise

if TYPE_CHECKING:
    from ..spec import ThreatModel

__all__ = [
    "LEAK_MIN_WORDS",
    "LEAK_MIN_WORDS_EXAMPLE",
    "MAX_OPTION",
    "MAX_QUESTION",
    "MIN_QUESTION",
    "RULES",
    "RuleContext",
    "apply_rules",
    "copied_span",
    "ends_mid_sentence",
    "example_texts",
    "looks_like_injection",
    "looks_like_refusal",
    "rule",
]


@dataclass(frozen=True)
class RuleContext:
    """What the rules know beyond the item: the text of each request (by its cache key, as in
    `lineage["request"]`), which requests' answers stopped at their token cap, and the spec's floor
    on the label check's confidence."""

    requests: Mapping[str, str] = field(default_factory=dict)
    capped: Mapping[str, int] = field(default_factory=dict)
    """Request key -> its max_tokens, for answers that stopped there."""
    facets: tuple[str, ...] = ()
    """Facet names: a request names the item's facet, and an item may too."""
    examples: tuple[str, ...] = ()
    """The texts of the spec's few-shot items, which items imitate and may echo more of."""
    min_label_confidence: float = 0.5
    """The spec's judge.min_label_confidence: by default the key needs at least even odds."""


Rule = Callable[[Candidate, RuleContext], str | None]
RULES: Registry[Rule] = Registry("rule", "mwe.rules")
"""Rules in the order they run; a plugin's rule (entry point group `mwe.rules`) runs before labelling
unless its module registers it with `@rule(name, after_label=True)`."""
AFTER_LABEL: set[str] = set()

MIN_QUESTION = 20
MAX_QUESTION = 1500
MAX_OPTION = 400
MAX_OPTIONS = 8
LEAK_MIN_WORDS = 5
"""An item field that copies this many consecutive words of its request's instructions, variance
prompt or facet description is leaked prompt text (benchmarks/rules_thresholds.py measured it)."""
LEAK_MIN_WORDS_EXAMPLE = 10
"""The same for words copied from a few-shot item, which items imitate."""

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
_SENTENCE_END = re.compile(r"[.!?…\"'”’)\]*]\s*$")
# Words a sentence does not end on (case-sensitive: "Task A" is a name, "a" an article). "that",
# "in", "on" and modal verbs are left out: "do that", "log in", "I would" end sentences.
_DANGLING = frozenset("a an the and or but nor of with which because if than my your their our its to for".split())
_WORD = re.compile(r"[A-Za-z0-9$%'’]+")
_NUMBER = re.compile(r"^\$?\d[\d,.]*%?$")
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty "
    "hundred thousand million billion percent".split()
)


def looks_like_injection(text: str) -> bool:
    return bool(_INJECTION.search(text))


def rule(name: str, after_label: bool = False) -> Callable[[Rule], Rule]:
    """Register a rule under `name` (the rejection reason's prefix); `after_label` ones run once
    the label check has set `label_confidence`."""

    def wrap(fn: Rule) -> Rule:
        if after_label:
            AFTER_LABEL.add(name)
        return RULES.register(name, fn)

    return wrap


def _fields(c: Candidate) -> Iterator[tuple[str, str]]:
    """(name, text) of what the model wrote: a persona item's statement, not its fixed question
    and Yes/No; an open-ended item's prompt and both rubric lines; otherwise stem and options."""
    statement = c.fields.get("statement")
    if statement is not None:
        yield "statement", str(statement)
        return
    yield "question", c.question
    yield "matching option", c.matching
    for o in c.not_matching:
        yield "option", o


@rule("option_count")
def _option_count(c: Candidate, ctx: RuleContext) -> str | None:
    total = 1 + len(c.not_matching)
    return None if 2 <= total <= MAX_OPTIONS else f"{total} options; needs 2 to {MAX_OPTIONS}"


@rule("empty_text")
def _empty(c: Candidate, ctx: RuleContext) -> str | None:
    if not c.question.strip():
        return "empty question"
    if any(not o.strip() for o in [c.matching, *c.not_matching]):
        return "empty option"
    return None


@rule("length")
def _length(c: Candidate, ctx: RuleContext) -> str | None:
    q = len(c.question.strip())
    if q < MIN_QUESTION:
        return f"question too short ({q} < {MIN_QUESTION} characters)"
    if q > MAX_QUESTION:
        return f"question too long ({q} > {MAX_QUESTION} characters)"
    longest = max(len(o) for o in [c.matching, *c.not_matching])
    return None if longest <= MAX_OPTION else f"option too long ({longest} > {MAX_OPTION} characters)"


@rule("duplicate_options")
def _duplicate_options(c: Candidate, ctx: RuleContext) -> str | None:
    opts = [normalise(o) for o in [c.matching, *c.not_matching]]
    return None if len(set(opts)) == len(opts) else "two options have the same text"


@rule("refusal")
def _refusal(c: Candidate, ctx: RuleContext) -> str | None:
    return "refusal text" if looks_like_refusal(c.text) else None


@rule("template_artifact")
def _artifact(c: Candidate, ctx: RuleContext) -> str | None:
    m = _ARTIFACT.search(c.text)
    return f"template artifact {m.group(0).strip()!r}" if m else None


@rule("injection")
def _injection(c: Candidate, ctx: RuleContext) -> str | None:
    m = _INJECTION.search(c.text)
    return f"text addressed to the grader {m.group(0)!r}" if m else None


@rule("answer_leak")
def _answer_leak(c: Candidate, ctx: RuleContext) -> str | None:
    m = _LEAK.search(c.question)
    if m:
        return f"the stem gives the answer away ({m.group(0)!r})"
    stem = normalise(c.question)
    option = normalise(c.matching)
    if len(option) >= 15 and option in stem:
        return "the stem contains the matching option word for word"
    return None


def ends_mid_sentence(name: str, text: str) -> bool:
    """Ends on a comma, a dash or a word no sentence ends on, without closing punctuation (`name`
    "question" allows a closing colon). Public for anything that audits items for truncation."""
    t = text.rstrip()
    if not t or _SENTENCE_END.search(t):
        return False
    if t[-1] in ",;-–—(" or (t[-1] == ":" and name != "question"):
        return True
    words = _WORD.findall(t)
    return bool(words) and words[-1] in _DANGLING


def _short(text: str, width: int = 60) -> str:
    return text if len(text) <= width else "…" + text[-width:]


@rule("truncation")
def _truncation(c: Candidate, ctx: RuleContext) -> str | None:
    cap = ctx.capped.get(str(c.lineage.get("request", "")))
    for name, text in _fields(c):
        if cap is not None and not _SENTENCE_END.search(text):
            return f"the answer stopped at its cap of {cap} tokens and the {name} {_short(text)!r} is cut off"
        if ends_mid_sentence(name, text):
            return f"the {name} ends mid-sentence: {_short(text)!r}"
    return None


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD.findall(text)]


def example_texts(spec: ThreatModel) -> tuple[str, ...]:
    """The few-shot items' texts of three words or more (stems, options, statements, rubric lines)."""
    texts = []
    for ex in spec.examples:
        texts += ex.texts()
    return tuple(dict.fromkeys(t for t in texts if len(_words(t)) >= 3))


@lru_cache(maxsize=256)
def _source_words(source: str, exclude: tuple[str, ...]) -> tuple[str, ...]:
    """`source` as words, each phrase of `exclude` replaced by a marker no word matches (once per
    request: every item of a request is checked against it)."""
    low = " ".join(_words(source))
    for phrase in sorted({" ".join(_words(p)) for p in exclude}, key=len, reverse=True):
        if phrase:
            low = re.sub(rf"(?<!\S){re.escape(phrase)}(?!\S)", " \x00 ", low)
    return tuple(low.split())


def copied_span(text: str, source: str, exclude: tuple[str, ...] = ()) -> tuple[int, str]:
    """The longest run of consecutive words of `text` that `source` contains word for word
    (case and punctuation ignored), and that run. Phrases in `exclude` split `source`, so a run
    never spans or includes them."""
    src = _source_words(source, exclude)
    words = _words(text)
    if not words or not src:
        return 0, ""
    m = SequenceMatcher(None, words, src, autojunk=False).find_longest_match(0, len(words), 0, len(src))
    return m.size, " ".join(words[m.a : m.a + m.size])


@rule("prompt_leak")
def _prompt_leak(c: Candidate, ctx: RuleContext) -> str | None:
    """Instructions, variance prompts and facet descriptions (the request less its few-shot items
    and the facet names) may lend an item `LEAK_MIN_WORDS` words in a row; a few-shot item, which
    items are meant to imitate, `LEAK_MIN_WORDS_EXAMPLE`."""
    request = ctx.requests.get(str(c.lineage.get("request", "")))
    if not request:
        return None
    for name, text in _fields(c):
        size, span = copied_span(text, request, ctx.facets + ctx.examples)
        if size >= LEAK_MIN_WORDS:
            return f"the {name} copies {size} words of the request's instructions: {_short(span, 80)!r}"
        size, span = copied_span(text, request, ctx.facets)
        if size >= LEAK_MIN_WORDS_EXAMPLE:
            return f"the {name} copies {size} words of a few-shot item: {_short(span, 80)!r}"
    return None


def _masked(words: list[str]) -> list[str]:
    return ["#" if _NUMBER.match(w) or w in _NUMBER_WORDS else w for w in words]


def _one_word_apart(a: list[str], b: list[str]) -> bool:
    """One word substituted, inserted or deleted."""
    if abs(len(a) - len(b)) > 1 or a == b:
        return False
    ops = SequenceMatcher(None, a, b, autojunk=False).get_opcodes()
    changed = [op for op in ops if op[0] != "equal"]
    return len(changed) == 1 and max(op[2] - op[1] for op in changed) <= 1 and max(op[4] - op[3] for op in changed) <= 1


@rule("near_duplicate_options")
def _near_duplicate_options(c: Candidate, ctx: RuleContext) -> str | None:
    """Two options on the same side (neither of them the matching one) that differ only by a
    number or by one word: the item offers a scale or a rewording, not a choice. Between the
    matching option and another, one word or a number is how A/B items contrast ("I would be for /
    against this change", "10 / 100 servers": 25 % of anthropics/evals advanced-ai-risk items)."""
    toks = [_words(o) for o in c.not_matching]
    for i in range(len(toks)):
        for j in range(i + 1, len(toks)):
            a, b = toks[i], toks[j]
            if a != b and _masked(a) == _masked(b):
                return f"options {c.not_matching[i]!r} and {c.not_matching[j]!r} differ only by a number"
            if min(len(a), len(b)) >= 3 and _one_word_apart(a, b):
                return f"options {c.not_matching[i]!r} and {c.not_matching[j]!r} differ by one word"
    return None


@rule("label_confidence", after_label=True)
def _label_confidence(c: Candidate, ctx: RuleContext) -> str | None:
    conf = c.scores.get("label_confidence")
    if not isinstance(conf, (int, float)) or conf >= ctx.min_label_confidence:
        return None
    return (
        f"the label check gives the keyed option {conf:.2f}, below judge.min_label_confidence "
        f"{ctx.min_label_confidence}: it leans against the key"
    )


def apply_rules(
    cands: list[Candidate], ctx: RuleContext | None = None, after_label: bool = False
) -> tuple[list[Candidate], list[Rejection]]:
    """Run the rules of one phase (before labelling, or `after_label`) over `cands`."""
    ctx = ctx or RuleContext()
    active = [(n, f) for n, f in RULES.items() if (n in AFTER_LABEL) == after_label]
    kept: list[Candidate] = []
    rejected: list[Rejection] = []
    for c in cands:
        for name, check in active:
            reason = check(c, ctx)
            if reason:
                rejected.append(Rejection.of(c, "rules", f"{name}: {reason}"))
                break
        else:
            kept.append(c)
    return kept, rejected
