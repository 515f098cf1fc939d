"""Text in which a model declines instead of answering.

The engine leaves such answers out of the response cache (a re-run may get a real answer) and
the rules reject items that carry one; both ask here, below them.
"""

from __future__ import annotations

import re

__all__ = ["looks_like_refusal"]

_REFUSAL = re.compile(
    r"\bas an ai( language)? model\b|\bi(?:'m| am) sorry, but\b|\bi can(?:not|'t) (?:help|assist|comply) with (?:that|this)"
    r"|\bi(?:'m| am) not able to (?:help|assist|create|write)\b|\bi (?:won't|will not) (?:write|create) (?:that|this)",
    re.I,
)


def looks_like_refusal(text: str) -> bool:
    return bool(_REFUSAL.search(text))
