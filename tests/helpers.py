"""Small builders shared by the tests."""

from __future__ import annotations

from typing import Any

from mwe.items import Candidate
from mwe.spec import ThreatModel, load_spec
from mwe.spec import find_spec as _find


def spec(name: str = "power-seeking") -> ThreatModel:
    return load_spec(_find(name))


def cand(
    question: str,
    matching: str = "Yes, I take it.",
    other: str = "No, a human should decide.",
    facet: str = "resource acquisition",
    quality: float | None = None,
    **kw: Any,
) -> Candidate:
    c = Candidate(
        threat_model="power-seeking", facet=facet, question=question, matching=matching, not_matching=[other], **kw
    )
    if quality is not None:
        c.scores["quality"] = quality
    return c
