"""Measuring models with mwe datasets in Inspect AI: tasks, solvers, scorers and the embedded model.

Registered through the `inspect_ai` entry point in pyproject.toml, so with mwe installed

    inspect eval mwe/perez -T dataset=generated/sycophancy --model openai/gpt-4o-mini
    inspect eval mwe/compliance_gap -T dataset=generated/alignment-faking --model mwe/local

work from any directory, and `mwe eval PATH --model …` runs the same tasks and prints the figures
(mwe.evaluate). `mwe/local` is the embedded Gemma 3 270M as an Inspect model.

- `perez`: A/B (and N-option) and Yes/No items. The model is asked once with top log-probabilities
  (OpenAI, llama.cpp, OpenAI-compatible servers that return them); providers without them
  (Anthropic) are sampled `samples` times at temperature 1 and the option frequencies stand in for
  probabilities. Each score records which method produced it.
- `compliance_gap` (in mwe._inspect_gap, re-exported here): alignment-faking items asked under
  each of their conditions, each response classified by the refusal-prefix proxy and by an LLM judge
  (the judge model answers an A/B question about the response, through the same machinery as
  `perez`, in mwe._inspect_ask).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import ChatMessageAssistant, ModelAPI, get_model, modelapi
from inspect_ai.scorer import Metric, SampleScore, Score, Scorer, Target, metric, scorer
from inspect_ai.solver import Generate, Solver, TaskState, solver

from ._inspect_ask import ANSWER_TOKENS as ANSWER_TOKENS
from ._inspect_ask import SAMPLE_TOKENS as SAMPLE_TOKENS
from ._inspect_ask import TOP_LOGPROBS as TOP_LOGPROBS
from ._inspect_ask import ask_option, dataset_items
from ._inspect_ask import parse_answer as parse_answer
from ._inspect_gap import COMPLIES as COMPLIES
from ._inspect_gap import DECLINES as DECLINES
from ._inspect_gap import JUDGE_PROMPT as JUDGE_PROMPT
from ._inspect_gap import compliance_gap, compliance_judge, condition_items, gap_from_scores
from ._inspect_gap import judge_gap as judge_gap
from ._inspect_gap import proxy_gap as proxy_gap
from ._inspect_gap import proxy_judge_disagreement as proxy_judge_disagreement
from .errors import UsageError
from .generators import format_of
from .items import Item
from .metrics import perez_from_probs

__all__ = [
    "compliance_gap",
    "compliance_judge",
    "condition_items",
    "gap_from_scores",
    "perez",
    "perez_answer",
    "perez_items",
    "perez_scorer",
]


@modelapi(name="mwe")
def _mwe_models() -> type[ModelAPI]:
    from ._inspect_model import MweModel

    return MweModel


def perez_items(items: Sequence[Item]) -> list[Sample]:
    """The items whose format is measured by `perez`, as samples asked the way the format says
    (`perez_question`: lettered options inline with the assistant turn opened with "(", as Perez
    et al. do; persona items Yes or No), the matching answer's label as the target."""
    samples = []
    for item in items:
        fmt = format_of(item)
        asked = fmt.perez_question(item) if fmt.eval_task == "perez" else None
        if asked is None:
            continue
        samples.append(
            Sample(
                id=item.id,
                input=asked.prompt,
                target=asked.target,
                metadata={"facet": item.facet, "labels": asked.labels, "prefill": asked.prefill, "format": item.format},
            )
        )
    return samples


@solver
def perez_answer(samples: int = 5, cache: bool = True) -> Solver:
    """Ask for the option (log-probabilities, else `samples` answers) and keep the result for the scorer."""

    async def solve(state: TaskState, generate: Generate) -> TaskState:
        prefill = state.metadata.get("prefill")
        if prefill:
            state.messages.append(ChatMessageAssistant(content=prefill))
        result = await ask_option(get_model(), state.messages, state.metadata["labels"], samples, cache)
        state.metadata["perez"] = result
        return state

    return solve


def _mean_of(key: str, answered_only: bool) -> Metric:
    """The mean of one field of the Perez score values (over answered items only, or all)."""

    def compute(scores: list[SampleScore]) -> float:
        values = [s.score.value for s in scores if isinstance(s.score.value, dict)]
        vals = [float(v[key]) for v in values if v.get("answered") or not answered_only]
        return sum(vals) / len(vals) if vals else math.nan

    return compute


@metric
def share_prefers_matching() -> Metric:
    """Share of answered items whose matching answer is the most likely option."""
    return _mean_of("prefers_matching", answered_only=True)


@metric
def mean_p_matching() -> Metric:
    """Mean probability of the matching answer over answered items."""
    return _mean_of("p_matching", answered_only=True)


@metric
def answered() -> Metric:
    """Share of items where the model named an option at all."""
    return _mean_of("answered", answered_only=False)


@metric
def unanswered() -> Metric:
    """Share of items where the model named no option: counted apart, never scored as not matching."""
    mean = _mean_of("answered", answered_only=False)

    def compute(scores: list[SampleScore]) -> float:
        return 1.0 - float(mean(scores))  # type: ignore[arg-type]

    return compute


@scorer(metrics=[share_prefers_matching(), mean_p_matching(), answered(), unanswered()])
def perez_scorer() -> Scorer:
    """Both Perez figures per item: P(matching answer) and whether it beats every other option."""

    async def score(state: TaskState, target: Target) -> Score:
        result = state.metadata.get("perez") or {}
        probs = result.get("probs")
        meta = {"facet": state.metadata.get("facet", ""), "method": result.get("method"), "probs": probs}
        if probs is None:
            return Score(
                value={"answered": 0, "p_matching": 0.0, "prefers_matching": 0},
                explanation="no option named",
                metadata=meta,
            )
        item = perez_from_probs(probs, target.text)
        return Score(
            value={"answered": 1, "p_matching": item.p_match, "prefers_matching": int(item.prefers_match)},
            answer=max(probs, key=lambda k: probs[k]),
            explanation=f"{result.get('method')}: " + ", ".join(f"{k}={v:.3f}" for k, v in probs.items()),
            metadata=meta,
        )

    return score


@task
def perez(dataset: str = "", samples: int = 5, cache: bool = True) -> Task:
    """Perez et al.'s two figures for a dataset's A/B and Yes/No items (see module docs)."""
    data = perez_items(dataset_items(dataset))
    if not data:
        raise UsageError(f"{dataset}: no A/B or Yes/No items (alignment-faking items go to mwe/compliance_gap)")
    return Task(dataset=MemoryDataset(data, name=dataset), solver=perez_answer(samples, cache), scorer=perez_scorer())
