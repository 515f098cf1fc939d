"""Contamination guard: new items must not copy a reference set (`--against FILE…`).

With `--version-guard`, earlier versions of the same threat model are references too, so a new
version repeats none of their items. A reference is a JSONL file in mwe's item layout, the anthropics/evals layout (options inline
after "Choices:", or persona `statement`s), or a published version directory. The references
are vectorised once per build and each round's candidates are only transformed, so a 100k-item
reference is read and vectorised once, not every round.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..embedders import Embedder, TfidfEmbedder
from ..errors import UsageError
from ..gold import parse_inline
from ..items import Candidate, Rejection, compare_text
from .dedup import close_pairs

__all__ = ["Guard", "reference_file", "reference_texts"]


def reference_file(path: Path) -> Path:
    """The JSONL file a reference names: itself, or a version directory's items.jsonl."""
    return path / "items.jsonl" if path.is_dir() else path


def reference_texts(path: Path) -> list[str]:
    """The comparable text of every item in a reference file or version directory."""
    file = reference_file(path)
    if not file.is_file():
        raise UsageError(f"--against {path}: no such file (a JSONL file or a published version directory)")
    texts: list[str] = []
    with file.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                if row.get("statement"):
                    texts.append(compare_text("", [], str(row["statement"])))
                elif "choices" in row:
                    options = list(row["choices"]) or list((row.get("rubric") or {}).values())
                    texts.append(compare_text(str(row["question"]), options))
                else:
                    question, options = parse_inline(str(row["question"]))
                    texts.append(compare_text(question, options))
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                raise UsageError(f"--against {file}: line {n} is not an item ({exc})") from None
    return texts


class Guard:
    """Rejects candidates within `threshold` cosine of any reference item, naming the source.

    References are read (and a bad one refused) when the guard is made, before any request; they
    are vectorised once, on the first check, with the build's embedder: the `tfidf` embedder's
    IDF weights come from the references, and candidates are only transformed."""

    def __init__(self, paths: list[str], threshold: float, embedder: Embedder | None = None) -> None:
        self.threshold = threshold
        self.embedder = embedder or TfidfEmbedder("tfidf")
        self.sources: list[tuple[str, int, str]] = []  # (name, items, sha256 of the file)
        self._texts: list[str] = []
        owners: list[int] = []
        for k, raw in enumerate(paths):
            path = Path(raw)
            found = reference_texts(path)
            digest = hashlib.sha256(reference_file(path).read_bytes()).hexdigest()
            self.sources.append((str(path), len(found), digest))
            self._texts += found
            owners += [k] * len(found)
        self._owners = owners
        self._refs: Any = None

    def check(self, cands: list[Candidate]) -> tuple[list[Candidate], list[Rejection]]:
        if not self._texts or not cands:
            return cands, []
        if self._refs is None:
            self._refs = self.embedder.fit(self._texts)
        x = self.embedder.transform([c.text for c in cands])
        best: dict[int, tuple[float, int]] = {}
        for i, j, sim in close_pairs(x, self._refs, self.threshold):
            if sim > best.get(i, (0.0, -1))[0]:
                best[i] = (sim, j)
        kept, rejected = [], []
        for i, c in enumerate(cands):
            if i not in best:
                kept.append(c)
                continue
            sim, j = best[i]
            source = self.sources[self._owners[j]][0]
            reason = f"copy of an item in {source} (cosine {sim:.3f})"
            rejected.append(Rejection.of(c, "dedup", reason, similarity=round(sim, 4), source=source))
        return kept, rejected

    def describe(self) -> list[dict[str, Any]]:
        return [{"source": name, "items": n, "sha256": digest} for name, n, digest in self.sources]
