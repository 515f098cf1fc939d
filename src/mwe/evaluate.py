"""`mwe eval`: measure a model with a published dataset through Inspect AI, and say what it found.

The tasks live in mwe.inspect (so `inspect eval mwe/perez …` gives the same run); this module
plans the run (requests, tokens and a cost bound before anything is sent, as builds do), runs the
tasks that fit the dataset, and turns Inspect's logs into the reported figures: both Perez figures
per facet and overall, or the compliance gap by both classifiers, each with a bootstrap interval.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .costs import estimate_tokens, price_for
from .dataset import Dataset
from .errors import CostLimitReached, MissingDependency, ProviderError, UsageError
from .metrics import Estimate, GapReport, PerezItem, PerezReport, bootstrap, perez
from .providers._registry import provider_class
from .store import load

__all__ = ["EvalPlan", "EvalSummary", "inspect_model", "plan", "run", "summarise"]

_INSTALL = "pip install -e '.[eval]' in a checkout, or pip install 'mwe[eval]'"
INSPECT_NO_LOGPROBS = ("google/", "bedrock/")
"""Inspect's own providers (not mwe's) whose APIs return no log-probabilities: these are sampled.
For mwe's providers the class says (`Provider.inspect_logprobs`)."""


def inspect_model(model: str) -> str:
    """mwe's model names as Inspect's, as the provider class names them (`Provider.inspect_model`:
    the embedded model is `mwe/local`, OpenAI models go through mwe's client as `mwe/openai/…`).
    A name no mwe provider claims is Inspect's own and passes unchanged."""
    cls = provider_class(model)
    if cls is None:
        return model
    name, _, rest = model.partition("/")
    return cls.inspect_model(rest or name)


def _mwe_name(model: str) -> str:
    """The mwe model name behind an Inspect name (`mwe/openai/x` -> `openai/x`)."""
    return model.removeprefix("mwe/")


def _logprobs(inspect_name: str) -> bool:
    """Whether the Inspect model `inspect_name` gives top log-probabilities."""
    cls = provider_class(_mwe_name(inspect_name))
    if cls is not None:
        return cls.inspect_logprobs
    return not inspect_name.startswith(INSPECT_NO_LOGPROBS)


@dataclass(frozen=True)
class EvalPlan:
    """What one task of an eval run will send, before it is sent."""

    task: str
    samples: int
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    method: str

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _refuse_fake(ds: Dataset, allow_fake: bool) -> None:
    """Figures measured on templated test text would read as findings: FAKE data needs asking for."""
    if ds.manifest.fake and not allow_fake:
        raise UsageError(
            f"{ds.path} is FAKE DATA (made by the fake provider for tests and demos): figures measured on it "
            "mean nothing; build with a real model, or pass --allow-fake (allow_fake=True) to measure it anyway"
        )


def plan(
    ds: Dataset,
    model: str,
    *,
    judge: str | None = None,
    k: int = 5,
    max_tokens: int = 400,
    limit: int | None = None,
    allow_fake: bool = False,
) -> list[EvalPlan]:
    """Requests and tokens per task, and the most they can cost at list prices (every token
    uncached; None when the price is unknown). A FAKE dataset is refused unless `allow_fake`."""
    try:
        from .inspect import ANSWER_TOKENS, JUDGE_PROMPT, SAMPLE_TOKENS, condition_items, perez_items
    except ImportError:  # plan runs first, even for --dry-run: say what to install, not a traceback
        raise MissingDependency(f"mwe eval runs Inspect AI, which is not installed: {_INSTALL}") from None

    _refuse_fake(ds, allow_fake)
    model = inspect_model(model)
    judge = inspect_model(judge) if judge else model

    def asks(name: str) -> tuple[int, int, str]:
        """Calls and answer tokens per option question, and how the option is read."""
        if not _logprobs(name):
            return 1 + k, ANSWER_TOKENS + k * SAMPLE_TOKENS, f"{k} samples per item at temperature 1"
        return 1, ANSWER_TOKENS, "top-20 log-probabilities"

    def cost(label: str, tin: int, tout: int) -> float | None:
        price = price_for(_mwe_name(label))
        return None if price is None else price.bound(tin, tout)

    plans = []
    items = list(ds)
    perez_samples = perez_items(items)[:limit]
    if perez_samples:
        calls, out_tok, method = asks(model)
        tin = sum(estimate_tokens(str(s.input)) + 2 for s in perez_samples) * calls
        tout = out_tok * len(perez_samples)
        plans.append(
            EvalPlan("perez", len(perez_samples), calls * len(perez_samples), tin, tout, cost(model, tin, tout), method)
        )
    cond = condition_items(items)[:limit]
    if cond:
        jcalls, jout, jmethod = asks(judge)
        tin = sum(
            estimate_tokens(s.input if isinstance(s.input, str) else " ".join(m.text for m in s.input)) for s in cond
        )
        tout = max_tokens * len(cond)
        judge_in = (estimate_tokens(JUDGE_PROMPT) + max_tokens + 100) * len(cond) * jcalls * 2  # both option orders
        judge_out = jout * len(cond) * 2
        main, extra = cost(model, tin, tout), cost(judge, judge_in, judge_out)
        total = None if main is None or extra is None else main + extra
        plans.append(
            EvalPlan(
                "compliance_gap",
                len(cond),
                len(cond) * (1 + 2 * jcalls),
                tin + judge_in,
                tout + judge_out,
                total,
                f"responses up to {max_tokens} tokens; judge {judge}, both option orders: {jmethod}",
            )
        )
    if not plans:
        raise UsageError(
            f"{ds.path}: no A/B, Yes/No or alignment-faking items to evaluate (open-ended items: mwe export --format inspect)"
        )
    return plans


@dataclass(frozen=True)
class EvalSummary:
    task: str
    model: str
    log: str
    methods: dict[str, int]
    perez: PerezReport | None = None
    gap: GapReport | None = None
    judge_failures: int = 0
    bias: dict[str, Estimate] | None = None
    """Mean probability of each first option ("A", "Yes") over the items that offer it: a model
    that always answers A scores a share near 0.5 on a position-balanced set, and this says so."""

    def to_json(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "model": self.model,
            "log": self.log,
            "methods": self.methods,
            "perez": self.perez.to_json() if self.perez else None,
            "compliance_gap": self.gap.to_json() if self.gap else None,
            "judge_failures": self.judge_failures,
            "first_option_bias": {k: e.to_json() for k, e in (self.bias or {}).items()},
        }


def summarise(log: Any) -> EvalSummary:
    """The reported figures from an Inspect log of mwe/perez or mwe/compliance_gap."""
    from .inspect import gap_from_scores

    task = str(log.eval.task).split("/")[-1]
    scores = []
    for sample in log.samples or []:
        for sc in (sample.scores or {}).values():
            scores.append((sc.value if isinstance(sc.value, dict) else {}, sc.metadata or {}))
    methods = Counter(str(meta.get("method", "")) for _, meta in scores if meta.get("method"))
    model, where = str(log.eval.model), str(log.location)
    if task == "perez":
        items: list[PerezItem | None] = [
            PerezItem(float(v["p_matching"]), bool(v["prefers_matching"]), str(m.get("facet", "")))
            if v.get("answered")
            else None
            for v, m in scores
        ]
        firsts: dict[str, list[float]] = {}
        for _, m in scores:
            probs = m.get("probs")
            if probs:
                first = next(iter(probs))
                firsts.setdefault(first, []).append(float(probs[first]))
        bias = {k: bootstrap(v, np.mean) for k, v in firsts.items()}
        return EvalSummary(task, model, where, dict(methods), perez=perez(items), bias=bias)
    failures = sum(1 for v, _ in scores if "judge" not in v)
    return EvalSummary(task, model, where, dict(methods), gap=gap_from_scores(scores), judge_failures=failures)


def run(
    dataset: str | Path | Dataset,
    model: str,
    *,
    judge: str | None = None,
    k: int = 5,
    limit: int | None = None,
    log_dir: str | Path = "logs",
    max_tokens: int = 400,
    max_cost: float | None = None,
    display: str = "plain",
    base_url: str | None = None,
    api_key_env: str | None = None,
    cache: bool = True,
    plans: list[EvalPlan] | None = None,
    allow_fake: bool = False,
) -> tuple[list[EvalPlan], list[EvalSummary]]:
    """Plan (unless `plans` is given, as `mwe eval` does after printing them), check the cost
    bound, run the tasks that fit the dataset in Inspect, summarise. A FAKE dataset is refused
    unless `allow_fake`."""
    try:
        from inspect_ai import eval as inspect_eval

        from . import inspect as tasks
    except ImportError:
        raise MissingDependency(f"mwe eval runs Inspect AI, which is not installed: {_INSTALL}") from None
    ds = dataset if isinstance(dataset, Dataset) else load(dataset)
    _refuse_fake(ds, allow_fake)
    plans = (
        plans
        if plans is not None
        else plan(ds, model, judge=judge, k=k, max_tokens=max_tokens, limit=limit, allow_fake=allow_fake)
    )
    bound = sum(p.cost_usd or 0.0 for p in plans)
    unknown = any(p.cost_usd is None for p in plans)
    if max_cost is not None and (bound > max_cost or unknown):
        raise CostLimitReached(
            f"this eval could cost up to ${bound:.4f}"
            + (" (some prices unknown)" if unknown else "")
            + f", over --max-cost ${max_cost:.4f}; nothing was sent"
        )
    path = str(ds.path)
    run_tasks = []
    for p in plans:
        if p.task == "perez":
            run_tasks.append(tasks.perez(dataset=path, samples=k, cache=cache))
        else:
            run_tasks.append(
                tasks.compliance_gap(
                    dataset=path,
                    judge=inspect_model(judge) if judge else None,
                    samples=k,
                    max_tokens=max_tokens,
                    cache=cache,
                )
            )
    name = inspect_model(model)
    model_args = {"api_key_env": api_key_env} if api_key_env and name.startswith("mwe/") else {}
    logs = inspect_eval(
        run_tasks,
        model=name,
        model_base_url=base_url,
        model_args=model_args,
        log_dir=str(log_dir),
        limit=limit,
        max_retries=3,  # a server error is retried a few times, with a warning each, not for minutes
        display=display,  # type: ignore[arg-type]
    )
    summaries = []
    for log in logs:
        if log.status != "success":
            message = log.error.message if log.error else log.status
            raise ProviderError(f"the Inspect run of {log.eval.task} did not finish: {message} (log: {log.location})")
        summaries.append(summarise(log))
    return plans, summaries
