"""The dry run: what a build will ask for and cost, from its real prompts, sending nothing."""

from __future__ import annotations

import math
from typing import Any

from ..costs import price_for
from ..generators import get_generator
from ..items import Candidate
from ..providers import Provider
from ..providers.base import ChatRequest, CompletionRequest
from ..spec import LETTERS, ThreatModel
from .models import make_providers
from .options import BuildOptions
from .plan import BuildPlan

__all__ = ["estimate"]

LETTER_INDEX = {letter: i for i, letter in enumerate(LETTERS)}


def _label_requests_one(spec: ThreatModel, cands: list[Candidate]) -> list[Any]:
    from ..filters.label import label_requests

    return label_requests(spec, cands, 1)


def _batched_size(spec: ThreatModel, proxies: list[Candidate], make: Any, k: int) -> tuple[float, int]:
    """(input, most output) tokens of one request of `k` items, from the spec's examples: the
    fixed prefix and the mean item size, measured from single-item and all-in-one requests."""
    from ..costs import request_size

    def sized(per: int) -> list[tuple[int, int]]:
        judge = spec.judge.model_copy(update={"items_per_request": per})
        return [request_size(r) for r in make(spec.model_copy(update={"judge": judge}), proxies)]

    one = sized(1)
    single = sum(i for i, _ in one) / len(one)
    item = (sized(len(proxies))[0][0] - single) / (len(proxies) - 1) if len(proxies) > 1 else 0.0
    per_out = (one[0][1] - 60) if one else 100
    return single + (k - 1) * item, 60 + per_out * k


def estimate(spec: ThreatModel, opts: BuildOptions) -> dict[str, Any]:
    """What a build will ask for and cost, computed from its real prompts without sending any
    request, reading any key or opening a socket (`--dry-run`).

    Expected figures assume the planner's prior keep rate (three in four generated items kept),
    every judged item reaching the label check, output at half of each request's `max_tokens`,
    and prompt-cache reads for the fixed prefix ignored; the upper bound is the attempt budget with every answer at `max_tokens`. Token
    counts are estimated at four characters per token.
    """
    from ..costs import request_size
    from ..filters.judge import logprob_requests, rubric_requests

    plan = BuildPlan.of(spec, opts)
    gen, jud = make_providers(opts)
    gen_requests = 0
    budget = 0
    items = 0
    samples: list[ChatRequest | CompletionRequest] = []
    for fmt in plan.formats:
        generator = get_generator(fmt.name)(spec, opts.seed, chat=gen.chat)
        per = generator.items_per_request
        wants = {f: math.ceil(q / plan.keep_rate_prior) for f, q in fmt.quotas.items() if q}
        asks = {f: max(1, math.ceil(w / per)) for f, w in wants.items()}
        gen_requests += sum(asks.values())
        items += sum(wants.values())  # the planner asks for what it wants, not whole batches
        budget += fmt.budget
        for f, k in asks.items():
            sizes = [wants[f] // k + (1 if j < wants[f] % k else 0) for j in range(k)] if gen.chat else None
            samples += generator.requests(f, list(range(k)), plan.temperature, sizes)
    gen_in = sum(request_size(r)[0] for r in samples) / len(samples)
    gen_out = round(sum(request_size(r)[1] for r in samples) / len(samples))
    proxies = []
    for ex in spec.examples:
        question, choices, answer = ex.view()
        at = LETTER_INDEX[answer]
        proxies.append(
            Candidate(
                threat_model=spec.name,
                format=ex.format or plan.formats[0].name,
                facet=ex.facet or spec.facets[0].name,
                question=question,
                matching=choices[at],
                not_matching=[c for i, c in enumerate(choices) if i != at],
            )
        )
    most_items = round(budget * items / gen_requests)
    rows: list[tuple[str, Provider, int, float, int, int]] = [
        ("generation", gen, gen_requests, gen_in, gen_out, budget)
    ]
    if jud.chat:
        k = spec.judge.items_per_request
        samples_k = spec.judge.label_samples
        for stage, make in (("judge", rubric_requests), ("label", _label_requests_one)):
            tin, tout = _batched_size(spec, proxies, make, k)
            reps = samples_k if stage == "label" else 1
            rows.append((stage, jud, math.ceil(items / k) * reps, tin, tout, math.ceil(most_items / k) * reps))
    else:
        judge_reqs = logprob_requests(spec, proxies)[1:]
        judge_in = sum(request_size(r)[0] for r in judge_reqs) / max(1, len(judge_reqs))
        rows.append(("label", gen, items, gen_in, 1, most_items))
        rows.append(("judge", jud, items, judge_in, 1, most_items))
    stages: dict[str, Any] = {}
    for stage, p, count, tin, tout, most in rows:
        price = price_for(p.label)
        expected_out = tout if tout <= 1 else tout / 2
        stages[stage] = {
            "model": p.label,
            "requests": count,
            "input_tokens": round(count * tin),
            "output_tokens": round(count * expected_out),
            "cost_usd": round(count * price.bound(round(tin), round(expected_out), opts.batch), 4) if price else None,
            "max_requests": most,
            "max_cost_usd": round(most * price.bound(round(tin), tout, opts.batch), 4) if price else None,
        }
    known = all(s["cost_usd"] is not None for s in stages.values())
    return {
        "threat_model": spec.name,
        "n": plan.n,
        "batch": opts.batch,
        "stages": stages,
        "total_cost_usd": round(sum(s["cost_usd"] for s in stages.values()), 4) if known else None,
        "max_cost_usd": round(sum(s["max_cost_usd"] for s in stages.values()), 4) if known else None,
        "method": f"prior keep rate {plan.keep_rate_prior}, output at half of max_tokens, 4 characters per token; "
        "the maximum is the attempt budget with every answer at max_tokens",
    }
