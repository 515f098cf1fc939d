"""Asking an Inspect model which option it picks, shared by mwe's Inspect tasks: by top
log-probabilities where the provider returns them, else by sampled answers (see mwe.inspect)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from inspect_ai.model import ChatMessage, GenerateConfig, Model

from .errors import UsageError
from .items import Item
from .metrics import label_of, option_probs, sample_probs
from .store import load

__all__ = ["ANSWER_TOKENS", "SAMPLE_TOKENS", "TOP_LOGPROBS", "ask_option", "dataset_items", "parse_answer"]

TOP_LOGPROBS = 20
ANSWER_TOKENS = 4
SAMPLE_TOKENS = 8


def dataset_items(dataset: str) -> list[Item]:
    if not dataset:
        raise UsageError("give the dataset: -T dataset=PATH (a generated/<threat-model> folder or a version folder)")
    return list(load(dataset))


def parse_answer(text: str, labels: Sequence[str]) -> str | None:
    """The option a sampled answer names: a parenthesised letter first ("I pick (B)"), else the
    first word that is a label ("B) because…", "Yes, I…")."""
    for m in re.finditer(r"\(([A-H])\)", text):
        if m.group(1) in labels:
            return m.group(1)
    for word in re.findall(r"[A-Za-z]+", text):
        label = label_of(word, labels)
        if label is not None:
            return label
    return None


async def ask_option(
    model: Model, messages: list[ChatMessage], labels: Sequence[str], samples: int, cache: bool = True
) -> dict[str, Any]:
    """Ask `model` which option it picks: by top log-probabilities when the provider returns them,
    else by `samples` answers at temperature 1. Returns the method, the option probabilities
    (None when no option was named) and what they came from. With `cache`, answers go to
    Inspect's response cache, so a re-run (after a crash, or of a grown dataset) does not pay again."""
    out = await model.generate(
        messages,
        config=GenerateConfig(logprobs=True, top_logprobs=TOP_LOGPROBS, max_tokens=ANSWER_TOKENS, temperature=0.0),
        cache=cache,
    )
    logprobs = out.choices[0].logprobs if out.choices else None
    if logprobs is not None and logprobs.content:
        positions = [
            [(t.token, t.logprob) for t in (lp.top_logprobs or [])] or [(lp.token, lp.logprob)]
            for lp in logprobs.content
        ]
        return {"method": "logprobs", "probs": option_probs(positions, labels), "completion": out.completion}
    answers = []
    for k in range(samples):
        # the seed tells the k answers apart, in Inspect's cache key and where the provider takes one
        config = GenerateConfig(max_tokens=SAMPLE_TOKENS, temperature=1.0, seed=k + 1)
        sampled = await model.generate(messages, config=config, cache=cache)
        answers.append(parse_answer(sampled.completion, labels))
    refused = (out.metadata or {}).get("logprobs_refused")
    method = f"samples (k={samples})" + ("; the server refused log-probabilities" if refused else "")
    return {"method": method, "probs": sample_probs(answers, labels), "answers": answers}
