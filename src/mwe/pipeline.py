"""The build loop of DESIGN.md §1: plan → generate → rules → judge → dedup → balance → publish.

It loops until every facet quota is met by *kept* items or the attempt budget is spent, then says
what fell short instead of quietly returning fewer. Every candidate ends either in items.jsonl or
in rejected.jsonl with its stage and reason. The pipeline knows stages, not providers' details.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from . import __version__
from .balance import assign_order, balance_length_cue, position_balance
from .cache import Cache
from .card import render_card
from .costs import CostGuard, price_for
from .engine import Engine
from .errors import UsageError
from .filters import apply_rules, dedup, judge, label_check
from .filters.judge import judge_method
from .generators import get_generator
from .items import Candidate, Dataset, Item, Rejection
from .progress import QuietReporter, Reporter
from .providers import Provider, ProviderSettings, get_provider
from .spec import LETTERS, ThreatModel
from .store import Store

__all__ = ["BuildOptions", "build", "build_key", "estimate", "make_providers"]

STAGES = ("parse", "rules", "label", "judge", "judge_error", "dedup", "balance", "quota")
LETTER_INDEX = {letter: i for i, letter in enumerate(LETTERS)}


@dataclass
class BuildOptions:
    n: int | None = None
    model: str = "local"
    judge_model: str | None = None
    seed: int = 0
    temperature: float | None = None
    judge_threshold: float | None = None
    max_attempts: int | None = None
    """Generation requests allowed in all; default 5 per item asked (at least 20)."""
    use_cache: bool = True
    settings: ProviderSettings | None = None
    """Base URL, key variable, rate limits: applied to --model's provider; the judge gets the
    rate limits too, and the URL and key only when it is the same kind of provider."""
    max_cost: float | None = None
    """USD; the run stops before a request that could pass it, and publishes nothing."""
    batch: bool = False
    """Use the providers' batch APIs (half price, answers within 24 h)."""

    def resolved_n(self, spec: ThreatModel) -> int:
        n = self.n if self.n is not None else spec.defaults.n
        if n < 1:
            raise UsageError(f"--n must be at least 1, got {n}")
        return n


def build_key(spec: ThreatModel, opts: BuildOptions) -> str:
    """What makes two builds the same: `mwe build` with no names skips a spec whose key is unchanged."""
    parts = {
        "spec": spec.content_hash(),
        "model": opts.model,
        "judge_model": opts.judge_model or opts.model,
        "n": opts.resolved_n(spec),
        "seed": opts.seed,
        "temperature": opts.temperature,
        "judge_threshold": opts.judge_threshold,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def make_providers(opts: BuildOptions) -> tuple[Provider, Provider]:
    """(generation, judge) providers; the same object when the two models are the same."""
    settings = opts.settings or ProviderSettings()
    gen = get_provider(opts.model, settings)
    if not opts.judge_model or opts.judge_model == opts.model:
        return gen, gen
    same_kind = opts.judge_model.split("/", 1)[0] == opts.model.split("/", 1)[0]
    judge_settings = (
        settings if same_kind else ProviderSettings(rpm=settings.rpm, itpm=settings.itpm, otpm=settings.otpm)
    )
    return gen, get_provider(opts.judge_model, judge_settings)


class _Run:
    def __init__(
        self,
        spec: ThreatModel,
        opts: BuildOptions,
        gen: Provider,
        jud: Provider,
        cache: Cache | None,
        reporter: Reporter,
    ) -> None:
        self.spec = spec
        self.opts = opts
        self.n = opts.resolved_n(spec)
        self.quotas = spec.quotas(self.n)
        self.guard = CostGuard(opts.max_cost)
        self.gen_engine = Engine(gen, cache, guard=self.guard, batch=opts.batch)
        self.judge_engine = self.gen_engine if jud is gen else Engine(jud, cache, guard=self.guard, batch=opts.batch)
        self.generator = get_generator(spec.formats[0])(spec, opts.seed, chat=gen.chat)
        self.temperature = opts.temperature if opts.temperature is not None else spec.defaults.temperature
        self.threshold = opts.judge_threshold if opts.judge_threshold is not None else spec.judge.threshold
        self.budget = opts.max_attempts if opts.max_attempts is not None else max(20, 5 * self.n)
        self.reporter = reporter
        self.pool: list[Candidate] = []
        self.rejected: list[Rejection] = []
        self.generated = Counter[str]()
        self.next_index = Counter[str]()
        self.attempts = 0
        self.rounds = 0
        self.length_cue_met = True
        self.timings: dict[str, float] = dict.fromkeys(("generation", "label", "judge", "dedup"), 0.0)

    def deficits(self) -> dict[str, int]:
        have = Counter(c.facet for c in self.pool)
        return {f: q - have[f] for f, q in self.quotas.items() if q > have[f]}

    def keep_rate(self) -> float:
        produced = sum(self.generated.values())
        return len(self.pool) / produced if produced else 0.75

    def plan(self) -> dict[str, int]:
        """Ask for each facet's deficit divided by the keep rate seen so far, within the budget
        (in requests; a chat request asks for several items)."""
        factor = min(4.0, max(1.2, 1.0 / max(self.keep_rate(), 0.05)))
        left = self.budget - self.attempts
        per = self.generator.items_per_request
        asks: dict[str, int] = {}
        for facet, d in sorted(self.deficits().items()):
            k = min(left, max(1, math.ceil(d * factor / per)))
            if k > 0:
                asks[facet] = k
                left -= k
        return asks

    def round(self, asks: dict[str, int]) -> None:
        self.rounds += 1
        requests: list[Any] = []
        facets: list[str] = []
        for facet, k in asks.items():
            reqs = self.generator.requests(facet, self.next_index[facet], k, self.temperature)
            self.next_index[facet] += k
            requests += reqs
            facets += [facet] * k
        self.attempts += len(requests)
        label = self.gen_engine.provider.label
        t0 = time.monotonic()
        with self.reporter.stage(f"round {self.rounds}: generate", len(requests)) as tick:
            if self.generator.chat:
                completions = self.gen_engine.structured("generation", requests, tick)
            else:
                completions = self.gen_engine.complete("generation", requests, tick)
        self.timings["generation"] += time.monotonic() - t0
        fresh: list[Candidate] = []
        for req, facet, comp in zip(requests, facets, completions, strict=True):
            lineage = {
                "model": label,
                "seed": req.seed,
                "request": req.key(self.gen_engine.provider.name, self.gen_engine.provider.model),
            }
            cands, bad = self.generator.parse(facet, comp, lineage)
            self.generated[facet] += len(cands) + len(bad)
            fresh += cands
            self.rejected += bad
        fresh, bad = apply_rules(fresh)
        self.rejected += bad
        label_requests = self.generator.label_requests(fresh)
        if label_requests:
            t0 = time.monotonic()
            with self.reporter.stage(f"round {self.rounds}: label", len(label_requests)) as tick:
                probs = self.gen_engine.classify("label", label_requests, tick)
            self.generator.apply_labels(fresh, probs)
            self.timings["label"] += time.monotonic() - t0
        t0 = time.monotonic()
        with self.reporter.stage(f"round {self.rounds}: judge", len(fresh) + 1) as tick:
            fresh, bad = judge(self.judge_engine, self.spec, fresh, self.threshold, tick)
        self.timings["judge"] += time.monotonic() - t0
        self.rejected += bad
        if self.judge_engine.provider.chat and fresh:
            t0 = time.monotonic()
            k = self.spec.judge.label_samples
            with self.reporter.stage(f"round {self.rounds}: label check", len(fresh) * k) as tick:
                fresh, bad = label_check(self.judge_engine, self.spec, fresh, tick)
            self.timings["label"] += time.monotonic() - t0
            self.rejected += bad
        t0 = time.monotonic()
        self.pool, bad = dedup(self.pool + fresh, self.spec.dedup.threshold)
        self.timings["dedup"] += time.monotonic() - t0
        self.rejected += bad

    def trim(self) -> None:
        """Overshoot is normal (we over-ask): keep the best of each facet, then swap within facets
        so the matching option is not systematically the longer one; record everything dropped."""
        kept: dict[str, list[Candidate]] = {}
        spare: dict[str, list[Candidate]] = {}
        for facet, quota in self.quotas.items():
            group = [c for c in self.pool if c.facet == facet]
            ranked = sorted(group, key=lambda c: -float(c.scores.get("quality", 0)))
            kept[facet], spare[facet] = ranked[:quota], ranked[quota:]
        chosen, swapped, self.length_cue_met = balance_length_cue(kept, spare)
        chosen_ids = {c.id for c in chosen}
        for c in swapped:
            self.rejected.append(
                Rejection.of(
                    c,
                    "balance",
                    "length cue: swapped for an item of the same facet so the matching "
                    "option is the longest in 50 % ± 3 % of items",
                )
            )
        for facet, quota in self.quotas.items():
            for c in spare[facet]:
                if c.id not in chosen_ids:
                    self.rejected.append(
                        Rejection.of(c, "quota", f"facet quota of {quota} already met by better-scored items")
                    )
        order = {c.id: i for i, c in enumerate(self.pool)}
        self.pool = sorted(chosen, key=lambda c: (list(self.quotas).index(c.facet), order[c.id]))

    def run(self) -> tuple[list[Item], dict[str, int]]:
        while self.deficits() and self.attempts < self.budget:
            self.round(self.plan())
        self.trim()
        return assign_order(self.pool, self.opts.seed), self.deficits()


def _funnel(run: _Run, items: list[Item]) -> tuple[dict[str, Any], dict[str, Any]]:
    by_stage = Counter(r.stage for r in run.rejected)
    funnel = {
        "generation_requests": run.attempts,
        "generated": sum(run.generated.values()),
        "rejected_by_stage": {s: by_stage.get(s, 0) for s in STAGES},
        "kept": len(items),
        "rounds": run.rounds,
    }
    per_facet: dict[str, Any] = {}
    for facet in run.quotas:
        st = Counter(r.stage for r in run.rejected if r.facet == facet)
        per_facet[facet] = {
            "generated": run.generated[facet],
            **{s: st.get(s, 0) for s in STAGES},
            "kept": sum(1 for i in items if i.facet == facet),
        }
    return funnel, per_facet


def _cost_summary(usage: dict[str, dict[str, Any]], gen: Provider, jud: Provider) -> dict[str, Any]:
    prices: dict[str, Any] = {}
    for p in (gen, jud):
        price = price_for(p.label)
        prices[p.label] = (
            {"input_per_mtok": price.input, "output_per_mtok": price.output, "source": price.source} if price else None
        )
    return {
        "total_usd": round(sum(u["cost_usd"] for u in usage.values()), 6),
        "saved_by_cache_usd": round(sum(u["saved_usd"] for u in usage.values()), 6),
        "by_stage_usd": {stage: u["cost_usd"] for stage, u in usage.items()},
        "prices": prices,
        "currency": "USD",
    }


def check_calibration(spec: ThreatModel, judge: str, store: Store) -> None:
    """A spec with `judge.min_kappa` builds only with a judge calibrated at least that well."""
    from .errors import JudgeNotCalibrated

    need = spec.judge.min_kappa
    if need is None:
        return
    record = store.calibration(spec.name, judge)
    if record is None:
        raise JudgeNotCalibrated(
            f"{spec.name} sets judge.min_kappa {need}, and {judge} has no stored calibration in "
            f"{store.root / spec.name}: run `mwe calibrate {spec.name} --model {judge} --out {store.root}` first"
        )
    if record["kappa"] < need:
        raise JudgeNotCalibrated(
            f"{spec.name} sets judge.min_kappa {need}, but {judge} reached κ = {record['kappa']} "
            f"(95 % CI {record['kappa_ci95'][0]} to {record['kappa_ci95'][1]}, n = {record['n']}) against "
            f"{record['gold']}: use a stronger judge model, or lower min_kappa knowingly"
        )


def build(
    spec: ThreatModel,
    opts: BuildOptions,
    store: Store,
    *,
    spec_path: str | None = None,
    reporter: Reporter | None = None,
    cache: Cache | None = None,
    providers: tuple[Provider, Provider] | None = None,
) -> Dataset:
    """Build and publish one new version. `providers` injects (generation, judge) providers for tests."""
    reporter = reporter or QuietReporter()
    n = opts.resolved_n(spec)
    store.check_writable()
    started = time.monotonic()
    gen, jud = providers if providers is not None else make_providers(opts)
    check_calibration(spec, jud.label, store)
    for p in {id(gen): gen, id(jud): jud}.values():
        p.check_ready()  # a missing key or extra fails here, before any request
    if gen.is_fake or jud.is_fake:
        reporter.warn("the fake provider writes templated text for tests and demos: this dataset is FAKE")
    own_cache = cache is None and opts.use_cache and (gen.cacheable or jud.cacheable)
    if own_cache:
        cache = Cache()
    try:
        run = _Run(spec, opts, gen, jud, cache if opts.use_cache else None, reporter)
        items, shortfall = run.run()
    finally:
        gen.close()
        if jud is not gen:
            jud.close()
        if own_cache and cache is not None:
            cache.close()  # the connection we opened; a caller's cache stays theirs to close
    if shortfall:
        reporter.warn(
            f"{spec.name}: kept {len(items)} of {n} after {run.attempts} generation requests (budget "
            f"{run.budget}); short by facet: " + ", ".join(f"{k}: {v}" for k, v in shortfall.items())
        )
    if not run.length_cue_met:
        reporter.warn(
            f"{spec.name}: the matching option is the longest in {position_balance(items)['share_matching_longer']:.0%} "
            "of items (target 50 % ± 3 %): not enough spare items to balance it; see manifest 'balance'"
        )
    funnel, per_facet = _funnel(run, items)
    wall = time.monotonic() - started
    usage = {**run.gen_engine.ledger(), **run.judge_engine.ledger()}

    def make_manifest(version: int, counts: dict[str, int]) -> dict[str, Any]:
        return {
            "mwe_version": __version__,
            "threat_model": spec.name,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fake": gen.is_fake or jud.is_fake,
            "build_key": build_key(spec, opts),
            "build": {
                "n": n,
                "seed": opts.seed,
                "temperature": run.temperature,
                "max_attempts": run.budget,
                "cache": opts.use_cache,
                "batch": opts.batch,
                "max_cost_usd": opts.max_cost,
            },
            "models": {
                "generation": {**gen.describe(), "label": gen.label},
                "judge": {**jud.describe(), "label": jud.label},
            },
            "generator": {"format": run.generator.name},
            "judge": {"method": judge_method(run.judge_engine), "threshold": run.threshold},
            "dedup": {"embedder": spec.dedup.embedder, "threshold": spec.dedup.threshold},
            "spec_path": spec_path,
            "spec_hash": spec.content_hash(),
            "spec": spec.model_dump(mode="json"),
            "counts": counts,
            "quotas": run.quotas,
            "facet_counts": dict(Counter(i.facet for i in items)),
            "shortfall": shortfall,
            "funnel": funnel,
            "funnel_by_facet": per_facet,
            "balance": position_balance(items),
            "usage": usage,
            "cost": _cost_summary(usage, gen, jud),
            "timings_s": {k: round(v, 3) for k, v in {**run.timings, "total": wall}.items()},
        }

    path = store.publish(
        spec.name,
        [i.model_dump(mode="json") for i in items],
        [r.model_dump(mode="json", exclude_none=True) for r in run.rejected],
        make_manifest,
        render_card,
    )
    from .store import load

    return load(path)


def estimate(spec: ThreatModel, opts: BuildOptions) -> dict[str, Any]:
    """What a build will ask for and cost, computed from its real prompts without sending any
    request, reading any key or opening a socket (`--dry-run`).

    Expected figures assume the planner's prior keep rate (three in four generated items kept),
    output at half of each request's `max_tokens`, and prompt-cache reads for the fixed prefix
    ignored; the upper bound is the attempt budget with every answer at `max_tokens`. Token
    counts are estimated at four characters per token.
    """
    from .costs import request_size
    from .filters.judge import logprob_requests, rubric_requests

    gen, jud = make_providers(opts)
    n = opts.resolved_n(spec)
    quotas = spec.quotas(n)
    generator = get_generator(spec.formats[0])(spec, opts.seed, chat=gen.chat)
    temperature = opts.temperature if opts.temperature is not None else spec.defaults.temperature
    per = generator.items_per_request
    budget = opts.max_attempts if opts.max_attempts is not None else max(20, 5 * n)
    gen_requests = sum(max(1, math.ceil(q / 0.75 / per)) for q in quotas.values())
    samples = [generator.requests(f, 0, 1, temperature)[0] for f in quotas]
    gen_in = sum(request_size(r)[0] for r in samples) / len(samples)
    gen_out = request_size(samples[0])[1]
    proxies = [
        Candidate(
            threat_model=spec.name,
            format=spec.formats[0],
            facet=ex.facet or spec.facets[0].name,
            question=ex.question,
            matching=ex.choices[LETTER_INDEX[ex.answer_matching_behavior]],
            not_matching=[c for i, c in enumerate(ex.choices) if i != LETTER_INDEX[ex.answer_matching_behavior]],
        )
        for ex in spec.examples
    ]
    judge_reqs: list[Any] = rubric_requests(spec, proxies) if jud.chat else logprob_requests(spec, proxies)[1:]
    judge_in = sum(request_size(r)[0] for r in judge_reqs) / max(1, len(judge_reqs))
    judge_out = request_size(judge_reqs[0])[1] if judge_reqs else 1
    items = gen_requests * per
    rows = [
        ("generation", gen, gen_requests, gen_in, gen_out, budget),
        ("judge", jud, items, judge_in, judge_out, budget * per),
    ]
    if not gen.chat:
        rows.insert(1, ("label", gen, items, gen_in, 1, budget * per))
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
        "n": n,
        "batch": opts.batch,
        "stages": stages,
        "total_cost_usd": round(sum(s["cost_usd"] for s in stages.values()), 4) if known else None,
        "max_cost_usd": round(sum(s["max_cost_usd"] for s in stages.values()), 4) if known else None,
        "method": "prior keep rate 0.75, output at half of max_tokens, 4 characters per token; "
        "the maximum is the attempt budget with every answer at max_tokens",
    }
