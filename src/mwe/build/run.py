"""`build()`: check the judge's calibration, open providers and engines, run each format, then
publish the version atomically with its manifest and card."""

from __future__ import annotations

import time

from ..balance import position_balance
from ..cache import Cache
from ..card import render_card
from ..costs import CostGuard
from ..dataset import Dataset
from ..embedders import get_embedder, is_api
from ..engine import Engine
from ..filters.contamination import Guard
from ..filters.judge import judge_method
from ..items import Item
from ..progress import QuietReporter, Reporter
from ..providers import Provider
from ..spec import ThreatModel
from ..store import Store
from .loop import FormatRun
from .models import make_providers, other_provider
from .options import BuildOptions
from .plan import BuildPlan
from .record import Outcome, format_row, shortfall_message

__all__ = ["build", "check_calibration"]


def check_calibration(spec: ThreatModel, judge: str, store: Store) -> None:
    """A spec with `judge.min_kappa` builds only with a judge calibrated at least that well."""
    from ..errors import JudgeNotCalibrated

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
    store.check_writable()
    with store.run_lock(spec.name):
        return _build(spec, opts, store, spec_path, reporter, cache, providers)


def _build(
    spec: ThreatModel,
    opts: BuildOptions,
    store: Store,
    spec_path: str | None,
    reporter: Reporter | None,
    cache: Cache | None,
    providers: tuple[Provider, Provider] | None,
) -> Dataset:
    reporter = reporter or QuietReporter()
    plan = BuildPlan.of(spec, opts)
    embedder_name = plan.embedder
    earlier = [str(store.root / spec.name / f"v{v}") for v in store.versions(spec.name)] if opts.version_guard else []
    # a bad reference file fails here, before any request (vectors come later, with the embedder)
    ref_paths = [*(opts.against or []), *earlier]
    references = Guard(ref_paths, plan.dedup_cutoff) if ref_paths else None
    started = time.monotonic()
    gen, jud = providers if providers is not None else make_providers(opts)
    check_calibration(spec, jud.label, store)
    second = other_provider(opts, opts.second_judge_model) if opts.second_judge_model else None
    for p in {id(x): x for x in (gen, jud, second) if x is not None}.values():
        p.check_ready()  # a missing key or extra fails here, before any request
    if gen.is_fake or jud.is_fake:
        reporter.warn("the fake provider writes templated text for tests and demos: this dataset is FAKE")
    own_cache = cache is None and opts.use_cache and (gen.cacheable or jud.cacheable or is_api(embedder_name))
    if own_cache:
        cache = Cache()
    runs: list[FormatRun] = []
    items: list[Item] = []
    embed_engines: list[Engine] = []
    try:
        guard = CostGuard(opts.max_cost)
        use = cache if opts.use_cache else None
        gen_engine = Engine(gen, use, guard=guard, batch=opts.batch)
        judge_engine = gen_engine if jud is gen else Engine(jud, use, guard=guard, batch=opts.batch)
        second_engine = Engine(second, use, guard=guard, batch=opts.batch) if second is not None else None

        def engine_for(label: str) -> Engine:
            provider = other_provider(opts, label)
            provider.check_ready()  # a missing key fails here, before any request
            embed_engines.append(Engine(provider, use, guard=guard))
            return embed_engines[-1]

        embedder = get_embedder(embedder_name, engine_for)
        if references is not None:  # its own instance: dedup refits `tfidf` weights on every pool
            references.embedder = embedder if embedder.stateless else get_embedder(embedder_name, engine_for)
        for fmt in plan.formats:
            engines = (gen_engine, judge_engine, second_engine)
            run = FormatRun(plan, fmt, engines, reporter, references, embedder)
            got, _ = run.run()
            runs.append(run)
            items += got
    finally:
        gen.close()
        if jud is not gen:
            jud.close()
        if second is not None:
            second.close()
        for e in embed_engines:
            e.provider.close()
        if own_cache and cache is not None:
            cache.close()  # the connection we opened; a caller's cache stays theirs to close
    if any(r.shortfall() for r in runs):
        by_format = {r.generator.name: format_row(r, items) for r in runs}
        reporter.warn(f"{spec.name}: kept {len(items)} of {plan.n}; " + shortfall_message(by_format))
    if not all(r.length_cue_met for r in runs):
        reporter.warn(
            f"{spec.name}: the matching option is the longest in {position_balance(items)['share_matching_longer']:.0%} "
            "of items (target 50 % ± 3 %): not enough spare items to balance it; see manifest 'balance'"
        )
    outcome = Outcome(
        plan=plan,
        runs=runs,
        items=items,
        gen=gen,
        jud=jud,
        second=second,
        engines=[gen_engine, judge_engine, *([second_engine] if second_engine else []), *embed_engines],
        judge_method=judge_method(judge_engine),
        references=references,
        wall_s=time.monotonic() - started,
        spec_path=spec_path,
    )
    path = store.publish(
        spec.name,
        [i.model_dump(mode="json", exclude_none=True) for i in items],
        [r.model_dump(mode="json", exclude_none=True) for run in runs for r in run.rejected],
        outcome.manifest,
        render_card,
    )
    from ..store import load

    return load(path)
