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
from .balance import assign_order, position_balance
from .cache import Cache
from .card import render_card
from .engine import Engine
from .errors import UsageError
from .filters import apply_rules, dedup, judge
from .filters.judge import METHOD as JUDGE_METHOD
from .generators import get_generator
from .items import Candidate, Dataset, Item, Rejection
from .progress import QuietReporter, Reporter
from .providers import Provider, get_provider
from .spec import ThreatModel
from .store import Store

__all__ = ["BuildOptions", "build", "build_key"]

STAGES = ("parse", "rules", "judge", "dedup", "quota")


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
        self.gen_engine = Engine(gen, cache)
        self.judge_engine = self.gen_engine if jud is gen else Engine(jud, cache)
        self.generator = get_generator(spec.formats[0])(spec, opts.seed)
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
        self.timings: dict[str, float] = dict.fromkeys(("generation", "label", "judge", "dedup"), 0.0)

    def deficits(self) -> dict[str, int]:
        have = Counter(c.facet for c in self.pool)
        return {f: q - have[f] for f, q in self.quotas.items() if q > have[f]}

    def keep_rate(self) -> float:
        produced = sum(self.generated.values())
        return len(self.pool) / produced if produced else 0.75

    def plan(self) -> dict[str, int]:
        """Ask for each facet's deficit divided by the keep rate seen so far, within the budget."""
        factor = min(4.0, max(1.2, 1.0 / max(self.keep_rate(), 0.05)))
        left = self.budget - self.attempts
        asks: dict[str, int] = {}
        for facet, d in sorted(self.deficits().items()):
            k = min(left, max(1, math.ceil(d * factor)))
            if k > 0:
                asks[facet] = k
                left -= k
        return asks

    def round(self, asks: dict[str, int]) -> None:
        self.rounds += 1
        requests, facets = [], []
        for facet, k in asks.items():
            reqs = self.generator.requests(facet, self.next_index[facet], k, self.temperature)
            self.next_index[facet] += k
            requests += reqs
            facets += [facet] * k
        self.attempts += len(requests)
        label = self.gen_engine.provider.label
        t0 = time.monotonic()
        with self.reporter.stage(f"round {self.rounds}: generate", len(requests)) as tick:
            completions = self.gen_engine.complete("generation", requests, tick)
        self.timings["generation"] += time.monotonic() - t0
        fresh: list[Candidate] = []
        for req, facet, comp in zip(requests, facets, completions, strict=True):
            lineage = {
                "model": label,
                "seed": req.seed,
                "request": req.key(self.gen_engine.provider.name, self.gen_engine.provider.model),
            }
            cands, bad = self.generator.parse(facet, comp.text, lineage)
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
        t0 = time.monotonic()
        self.pool, bad = dedup(self.pool + fresh, self.spec.dedup.threshold)
        self.timings["dedup"] += time.monotonic() - t0
        self.rejected += bad

    def trim(self) -> None:
        """Overshoot is normal (we over-ask); keep the best of each facet and record the rest."""
        kept: list[Candidate] = []
        for facet, quota in self.quotas.items():
            group = [c for c in self.pool if c.facet == facet]
            ranked = sorted(group, key=lambda c: -float(c.scores.get("quality", 0)))
            kept += ranked[:quota]
            for c in ranked[quota:]:
                self.rejected.append(
                    Rejection(
                        id=c.id,
                        stage="quota",
                        reason=f"facet quota of {quota} already met by better-scored items",
                        facet=facet,
                        item=c.model_dump(mode="json"),
                        scores=dict(c.scores),
                        lineage=c.lineage,
                    )
                )
        order = {c.id: i for i, c in enumerate(self.pool)}
        self.pool = sorted(kept, key=lambda c: (list(self.quotas).index(c.facet), order[c.id]))

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
    if providers is None:
        gen = get_provider(opts.model)
        jud = gen if not opts.judge_model or opts.judge_model == opts.model else get_provider(opts.judge_model)
    else:
        gen, jud = providers
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
    funnel, per_facet = _funnel(run, items)
    wall = time.monotonic() - started

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
            },
            "models": {
                "generation": {**gen.describe(), "label": gen.label},
                "judge": {**jud.describe(), "label": jud.label},
            },
            "generator": {"format": run.generator.name},
            "judge": {"method": JUDGE_METHOD, "threshold": run.threshold},
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
            "usage": {**run.gen_engine.ledger(), **run.judge_engine.ledger()},
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
