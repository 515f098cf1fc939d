"""What a build records in its manifest: the funnel, one row per format, the second judge's
agreement and the cost, and the shortfall message the CLI repeats."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._version import __version__
from ..balance import position_balance
from ..costs import price_for
from ..engine import Engine
from ..filters.contamination import Guard
from ..filters.dedup import diversity
from ..filters.rules import LEAK_MIN_WORDS, LEAK_MIN_WORDS_EXAMPLE, RULES
from ..items import Item
from ..manifest import (
    SCHEMA_VERSION,
    STAGES,
    Balance,
    BuildSettings,
    Cost,
    Counts,
    Dedup,
    FormatRow,
    Funnel,
    Generator,
    Judge,
    Manifest,
    ModelInfo,
    Models,
    Rules,
    SecondJudge,
)
from ..providers import Provider
from .loop import FormatRun
from .plan import BuildPlan

__all__ = ["STAGES", "Outcome", "format_row", "shortfall_message"]


def funnel(runs: list[FormatRun], items: list[Item]) -> tuple[Funnel, dict[str, dict[str, int]]]:
    rejected = [r for run in runs for r in run.rejected]
    by_stage = Counter(r.stage for r in rejected)
    generated = sum((run.generated for run in runs), Counter[str]())
    overall = Funnel(
        generation_requests=sum(run.attempts for run in runs),
        generated=sum(generated.values()),
        rejected_by_stage={s: by_stage.get(s, 0) for s in STAGES},
        kept=len(items),
        rounds=sum(run.rounds for run in runs),
    )
    per_facet: dict[str, dict[str, int]] = {}
    for facet in runs[0].quotas:
        st = Counter(r.stage for r in rejected if r.facet == facet)
        per_facet[facet] = {
            "generated": generated[facet],
            **{s: st.get(s, 0) for s in STAGES},
            "kept": sum(1 for i in items if i.facet == facet),
        }
    return overall, per_facet


def shortfall_message(by_format: dict[str, FormatRow]) -> str:
    """Which format and facets fell short, what they spent, where their items went, and the
    option that gives more: from the manifest's `generator.by_format`, so the CLI says the same."""
    parts = []
    total = sum(f.max_attempts for f in by_format.values())
    for fmt, f in by_format.items():
        if not f.shortfall:
            continue
        facets = ", ".join(f"{k} by {v}" for k, v in f.shortfall.items())
        stages = sorted(f.rejected_by_stage.items(), key=lambda kv: -kv[1])
        why = ", ".join(f"{s} {c}" for s, c in stages[:3] if c)
        parts.append(
            f"{fmt} fell short ({facets}) after spending {f.generation_requests} of its "
            f"{f.max_attempts} generation requests" + (f" (rejected: {why})" if why else "")
        )
    split_note = ", split equally over the formats" if len(by_format) > 1 else ""
    return "; ".join(parts) + f"; --max-attempts {2 * total} (now {total}{split_note}) allows more requests"


def format_row(run: FormatRun, items: list[Item]) -> FormatRow:
    mine = [i for i in items if i.format == run.generator.name]
    stages = Counter(r.stage for r in run.rejected)
    return FormatRow(
        n=run.n,
        layout=run.generator.layout,
        quotas=run.quotas,
        kept=len(mine),
        shortfall=run.shortfall(),
        generation_requests=run.attempts,
        max_attempts=run.budget,
        rejected_by_stage={s: stages[s] for s in STAGES if stages[s]},
        length_cue_topup_rounds=run.topups,
        balance=Balance.model_validate(position_balance(mine)),
    )


def agreement(second: Provider, votes: list[tuple[str, str | None]]) -> SecondJudge:
    """How often the second judge named the keyed option, over the items it saw (after the
    rubric and label judges), with Cohen's κ over the option letters it answered."""
    from ..calibration import cohen_kappa

    answered = [(k, v) for k, v in votes if v is not None]
    agree = sum(k == v for k, v in answered)
    return SecondJudge(
        model=second.label,
        items=len(votes),
        answered=len(answered),
        agree=agree,
        share_agree=round(agree / len(answered), 4) if answered else None,
        kappa=round(cohen_kappa([k for k, _ in answered], [v for _, v in answered]), 4) if answered else None,
        note="recorded, not enforced: items the second judge disagrees with are kept",
    )


def cost_summary(usage: dict[str, dict[str, Any]], gen: Provider, jud: Provider) -> Cost:
    prices: dict[str, dict[str, Any] | None] = {}
    for p in (gen, jud):
        price = price_for(p.label)
        prices[p.label] = (
            {"input_per_mtok": price.input, "output_per_mtok": price.output, "source": price.source} if price else None
        )
    return Cost(
        total_usd=round(sum(u["cost_usd"] for u in usage.values()), 6),
        saved_by_cache_usd=round(sum(u["saved_usd"] for u in usage.values()), 6),
        by_stage_usd={stage: u["cost_usd"] for stage, u in usage.items()},
        prices=prices,
        currency="USD",
    )


@dataclass
class Outcome:
    """What the format runs produced, with the providers and engines that produced it: all the
    manifest is made of, besides the plan."""

    plan: BuildPlan
    runs: list[FormatRun]
    items: list[Item]
    gen: Provider
    jud: Provider
    second: Provider | None
    engines: list[Engine]
    """Generation, judge, second judge and embedder engines; the same engine may appear twice."""
    judge_method: str
    references: Guard | None
    wall_s: float
    spec_path: str | None

    def usage(self) -> dict[str, dict[str, Any]]:
        usage: dict[str, dict[str, Any]] = {}
        for e in {id(e): e for e in self.engines}.values():  # a stage two engines share is summed
            for k, v in e.ledger().items():
                usage[k] = v if k not in usage else {f: usage[k][f] + x for f, x in v.items()}
        return usage

    def manifest(self, version: int, counts: dict[str, int]) -> Manifest:
        """The manifest of the version `store.publish` is writing (it knows the version and counts)."""
        plan, spec, opts, runs, items = self.plan, self.plan.spec, self.plan.options, self.runs, self.items
        gen, jud, second = self.gen, self.jud, self.second
        quotas = Counter[str]()
        shortfall = Counter[str]()
        for run in runs:
            quotas.update(run.quotas)
            shortfall.update(run.shortfall())
        funnel_all, per_facet = funnel(runs, items)
        usage = self.usage()
        timings = {k: sum(r.timings[k] for r in runs) for k in runs[0].timings}
        return Manifest(
            schema_version=SCHEMA_VERSION,
            mwe_version=__version__,
            threat_model=spec.name,
            version=version,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            fake=gen.is_fake or jud.is_fake,
            build_key=plan.key(),
            build=BuildSettings(
                n=plan.n,
                seed=opts.seed,
                temperature=plan.temperature,
                max_attempts=plan.max_attempts,
                cache=opts.use_cache,
                batch=opts.batch,
                max_cost_usd=opts.max_cost,
            ),
            models=Models(
                generation=ModelInfo(**gen.describe(), label=gen.label),
                judge=ModelInfo(**jud.describe(), label=jud.label),
            ),
            generator=Generator(
                formats=[r.generator.name for r in runs],
                by_format={r.generator.name: format_row(r, items) for r in runs},
            ),
            judge=Judge(
                method=self.judge_method,
                threshold=plan.judge_threshold,
                min_label_confidence=spec.judge.min_label_confidence,
                second=agreement(second, [v for r in runs for v in r.second_votes]) if second else None,
            ),
            rules=Rules(
                checks=list(RULES), leak_min_words=LEAK_MIN_WORDS, leak_min_words_example=LEAK_MIN_WORDS_EXAMPLE
            ),
            dedup=Dedup(
                embedder=plan.embedder,
                threshold=plan.dedup_cutoff,
                against=self.references.describe() if self.references is not None else [],
            ),
            diversity=diversity([i.text for i in items], [i.facet for i in items], seed=opts.seed),
            spec_path=self.spec_path,
            spec_hash=spec.content_hash(),
            prompts_hash={k: v for e in self.engines for k, v in e.prompts_hash().items()},
            spec=spec.model_dump(mode="json"),
            counts=Counts(**counts),
            quotas=dict(quotas),
            facet_counts=dict(Counter(i.facet for i in items)),
            shortfall=dict(shortfall),
            funnel=funnel_all,
            funnel_by_facet=per_facet,
            balance=Balance.model_validate(position_balance(items)),
            usage=usage,
            cost=cost_summary(usage, gen, jud),
            timings_s={k: round(v, 3) for k, v in {**timings, "total": self.wall_s}.items()},
        )
