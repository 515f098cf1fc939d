"""`mwe audit`: the validity figures of any eval set, not only mwe's, per file and overall.

What a researcher checks before trusting a behaviour eval, measured the same way everywhere:

- duplicates, exact (same normalised stem and options, or persona statement) and near (cosine at
  or above the threshold under mwe's dedup embedder, default `tfidf` at 0.85), counted as the items
  a dedup pass would drop (group size minus one);
- template and markup artifacts, by the build's own `template_artifact` rule (`<META_START>`,
  `{{`, `[INST]`, chat-turn tags, leftover `</item>` …);
- truncated fields: a stem, option or statement that ends on a comma, dash or a word that cannot end
  a sentence ("the", "and", "your" …). Missing closing punctuation alone is not counted: human-written
  sets leave it off whole sentences;
- position balance of the matching answer (share at the first option, counts per letter);
- the length cue: how often the matching option is strictly the longest (written options only);
- an options-only classifier: logistic regression on each option's words (hashed 1–2-grams), its
  letter and its length relative to the item's other options, cross-validated over items
  (5 folds): the share of items whose key it guesses without the question, beside chance and the
  best single-letter guess. Well above both means the key leaks through the options.

Yes/No items carry no wording or length cue (the options are the same in every item), so only the
position figure applies to them. Readers are in mwe._audit_read, the table and HTML in
mwe._audit_show.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._audit_read import AuditItem, Source, read_sources
from .errors import UsageError
from .items import Candidate, normalise
from .spec import LETTERS

__all__ = ["AuditSettings", "audit", "options_only", "truncation"]

_DANGLING = frozenset("a an the and or but nor than my your their our its".split())
"""Words that cannot end a sentence: a field that stops on one was cut off. Prepositions are
left out: "I would love to", "capable of" end human-written options."""
MIN_CLASSIFIER_ITEMS = 20
FOLDS = 5


def truncation(text: str) -> str | None:
    """Why `text` looks cut off mid-sentence, or None."""
    t = text.rstrip()
    if not t:
        return None
    if t[-1] in ",;-–—(/&":
        return f"ends on {t[-1]!r}"
    words = re.findall(r"[A-Za-z']+", t[-40:])
    if t[-1].isalpha() and words and words[-1] in _DANGLING:  # lower case: "(answer) A" is a letter
        return f"ends on {words[-1]!r}"
    return None


def _artifact(item: AuditItem) -> str | None:
    from .filters.rules import RULES, RuleContext

    options = list(item.options) or [""]
    fields = {"statement": item.statement} if item.statement else {}
    cand = Candidate(
        threat_model="audit",
        facet="",
        question=item.question,
        matching=options[0],
        not_matching=options[1:],
        fields=fields,
    )
    return RULES["template_artifact"](cand, RuleContext())


def _share(count: int, n: int) -> dict[str, Any]:
    return {"count": count, "share": round(count / n, 4) if n else None}


@dataclass(frozen=True)
class AuditSettings:
    embedder: str = "tfidf"
    threshold: float | None = None
    """Cosine for near duplicates; None takes the embedder's default (tfidf: 0.85)."""
    seed: int = 0


def _components(n: int, edges: list[tuple[int, int]]) -> int:
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in edges:
        parent[find(i)] = find(j)
    return len({find(i) for i in range(n)})


def _near_edges(items: list[AuditItem], settings: AuditSettings) -> tuple[list[tuple[int, int]], str, float]:
    from .embedders import get_embedder
    from .filters.dedup import near_pairs

    if settings.embedder.startswith("openai/"):
        raise UsageError(
            "mwe audit runs offline: --embedder tfidf, tfidf-char, tfidf-svd or sentence-transformers/<name>"
        )
    embedder = get_embedder(settings.embedder)
    threshold = settings.threshold if settings.threshold is not None else embedder.default_threshold
    if len(items) < 2:
        return [], embedder.label, threshold
    x = embedder.fit([i.text for i in items])
    return [(i, j) for i, j, _ in near_pairs(x, threshold)], embedder.label, threshold


def options_only(items: list[AuditItem], seed: int = 0) -> dict[str, Any]:
    """How far the key can be guessed from the options alone (see the module docs)."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.feature_extraction.text import HashingVectorizer
    from sklearn.linear_model import LogisticRegression

    from .metrics import bootstrap

    pool = [i for i in items if i.matching is not None and len(i.options) >= 2 and not i.fixed]
    if len(pool) < MIN_CLASSIFIER_ITEMS:
        return {
            "items": len(pool),
            "accuracy": None,
            "note": f"fewer than {MIN_CLASSIFIER_ITEMS} items with written options",
        }
    texts, numeric, labels, owner = [], [], [], []
    for k, item in enumerate(pool):
        lengths = [len(o) for o in item.options]
        mean = sum(lengths) / len(lengths) or 1.0
        for pos, option in enumerate(item.options):
            texts.append(option)
            letter = [0.0] * len(LETTERS)
            letter[min(pos, len(LETTERS) - 1)] = 1.0
            rel = min(1.0, max(-1.0, lengths[pos] / mean - 1.0))  # bounded, as the other features are
            numeric.append([*letter, rel, float(lengths[pos] == max(lengths)), float(lengths[pos] == min(lengths))])
            labels.append(int(pos == item.matching))
            owner.append(k)
    hashed = HashingVectorizer(ngram_range=(1, 2), n_features=2**16, alternate_sign=False).transform(texts)
    x = sp.hstack([hashed, sp.csr_matrix(np.array(numeric))]).tocsr()
    y, rows_of = np.array(labels), np.array(owner)
    fold_of = np.random.default_rng(seed).permutation(len(pool)) % FOLDS
    scores = np.zeros(len(texts))
    for fold in range(FOLDS):
        test = fold_of[rows_of] == fold
        model = LogisticRegression(solver="liblinear").fit(x[~test], y[~test])
        scores[test] = model.decision_function(x[test])
    correct = []
    start = 0
    for item in pool:
        k = len(item.options)
        correct.append(float(int(np.argmax(scores[start : start + k])) == item.matching))
        start += k
    acc = bootstrap(correct, np.mean, seed=seed)
    letters = Counter(i.matching for i in pool)
    return {
        "items": len(pool),
        "accuracy": round(acc.value, 4),
        "ci95": [round(acc.low, 4), round(acc.high, 4)],
        "chance": round(float(np.mean([1 / len(i.options) for i in pool])), 4),
        "best_letter": round(max(letters.values()) / len(pool), 4),
    }


def _cut(item: AuditItem) -> list[str]:
    """Truncated fields of an item, as "…<end of the field>" (why)."""
    fields = [item.question, *([] if item.fixed else item.options), *([item.statement] if item.statement else [])]
    return [f"…{f[-50:]!r} ({why})" for f in fields if (why := truncation(f))]


def _figures(items: list[AuditItem], edges: list[tuple[int, int]], seed: int) -> dict[str, Any]:
    n = len(items)
    exact = n - len({normalise(i.text) for i in items})
    artifacts = Counter(a for a in map(_artifact, items) if a)
    cut = [c for c in map(_cut, items) if c]
    keyed = [i for i in items if i.matching is not None and i.options]
    letters = Counter(LETTERS[min(m, len(LETTERS) - 1)] for i in keyed if (m := i.matching) is not None)
    yes = [i.says_yes for i in keyed if i.says_yes is not None]
    written = [i for i in keyed if not i.fixed and len(i.options) >= 2]
    longer = sum(
        len(i.options[m]) > max(len(o) for k, o in enumerate(i.options) if k != m)
        for i in written
        if (m := i.matching) is not None
    )
    return {
        "items": n,
        "exact_duplicates": _share(exact, n),
        "near_duplicates": _share(n - _components(n, edges) - exact, n),
        "artifacts": {**_share(sum(artifacts.values()), n), "kinds": dict(artifacts.most_common(5))},
        "truncated": {**_share(len(cut), n), "examples": [c[0] for c in cut[:3]]},
        "position": {
            "items": len(keyed),
            "share_first": round(letters.get("A", 0) / len(keyed), 4) if keyed else None,
            "by_letter": dict(sorted(letters.items())),
            "yes_no_items": len(yes),
            "share_yes": round(sum(yes) / len(yes), 4) if yes else None,
        },
        "matching_longer": {"items": len(written), "share": round(longer / len(written), 4) if written else None},
        "options_only": options_only(items, seed),
    }


def audit(paths: list[str | Path], settings: AuditSettings | None = None) -> dict[str, Any]:
    """The audit of every file `paths` name (JSON-ready): per file, then all files pooled.
    Duplicates across files count in the pooled figures only."""
    settings = settings or AuditSettings()
    sources: list[Source] = read_sources([Path(p) for p in paths])
    pooled = [item for s in sources for item in s.items]
    edges, label, threshold = _near_edges(pooled, settings)
    owner = [k for k, s in enumerate(sources) for _ in s.items]
    starts = [sum(len(s.items) for s in sources[:k]) for k in range(len(sources))]
    files = []
    for k, s in enumerate(sources):
        local = [(i - starts[k], j - starts[k]) for i, j in edges if owner[i] == k and owner[j] == k]
        files.append({"name": s.name, "layout": s.layout, **_figures(s.items, local, settings.seed)})
    return {
        "embedder": label,
        "threshold": threshold,
        "classifier": f"logistic regression on option words, letter and relative length; {FOLDS}-fold CV over items",
        "files": files,
        "overall": {
            **(files[0] if len(files) == 1 else _figures(pooled, edges, settings.seed)),  # one file: its own figures
            "name": "overall",
            "layout": "",
        },
    }
