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
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import __version__
from .balance import assign_order, balance_length_cue, length_cue_tolerance, matching_longer, position_balance
from .cache import Cache
from .card import render_card
from .costs import CostGuard, price_for
from .embedders import Embedder, check_name, get_embedder, is_api
from .engine import Engine
from .errors import UsageError
from .filters import apply_rules, dedup, judge, label_check
from .filters.contamination import Guard, reference_file
from .filters.dedup import diversity
from .filters.judge import judge_method
from .filters.label import second_opinion
from .filters.rules import LEAK_MIN_WORDS, LEAK_MIN_WORDS_EXAMPLE, RULES, RuleContext, example_texts
from .generators import get_generator
from .items import Candidate, Dataset, Item, Rejection, compare_text
from .progress import QuietReporter, Reporter
from .providers import Provider, ProviderSettings, get_provider
from .providers.base import ChatRequest, Completion, CompletionRequest
from .spec import LETTERS, ThreatModel
from .store import Store

__all__ = [
    "BuildOptions",
    "BuildPlan",
    "build",
    "build_key",
    "build_options",
    "estimate",
    "make_providers",
    "shortfall_message",
]

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
    formats: list[str] | None = None
    """Build only these of the spec's formats (default: all of them, n split equally)."""
    second_judge_model: str | None = None
    """A second model that labels every judged item; its agreement with the key is recorded."""
    against: list[str] | None = None
    """Reference files or version directories new items must not copy (contamination guard)."""
    version_guard: bool = False
    """Earlier versions of the threat model in the output directory are references too (off by
    default: a rebuild with the same seed then replays its cached answers and gives the same items)."""
    embedder: str | None = None
    """Overrides the spec's `dedup.embedder` (its threshold then is the embedder's default)."""

    def __post_init__(self) -> None:
        if self.embedder is not None:
            try:
                check_name(self.embedder)
            except ValueError as exc:
                raise UsageError(f"--embedder: {exc}") from None


def build_options(
    *,
    n: int | None = None,
    model: str = "local",
    judge_model: str | None = None,
    second_judge_model: str | None = None,
    seed: int = 0,
    temperature: float | None = None,
    judge_threshold: float | None = None,
    max_attempts: int | None = None,
    max_cost: float | None = None,
    batch: bool = False,
    formats: list[str] | None = None,
    against: Sequence[str | Path] | None = None,
    version_guard: bool = False,
    embedder: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    rpm: float | None = None,
    itpm: float | None = None,
    otpm: float | None = None,
    concurrency: int | None = None,
    structured: str | None = None,
    use_cache: bool = True,
) -> BuildOptions:
    """The one place `mwe.generate()` and `mwe build` turn their flat options into BuildOptions,
    checked the same way for both (a test holds their parameters equal to these)."""
    from .providers.openai import STRUCTURED_MODES

    if n is not None and n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    if max_cost is not None and max_cost < 0:
        raise UsageError(f"--max-cost must be at least 0, got {max_cost}")
    if structured is not None and structured not in STRUCTURED_MODES:
        raise UsageError(f"--structured must be one of {', '.join(STRUCTURED_MODES)}, got {structured!r}")
    settings = ProviderSettings(
        base_url=base_url,
        api_key_env=api_key_env,
        rpm=rpm,
        itpm=itpm,
        otpm=otpm,
        concurrency=concurrency,
        structured=structured,
    )
    return BuildOptions(
        n=n,
        model=model,
        judge_model=judge_model,
        seed=seed,
        temperature=temperature,
        judge_threshold=judge_threshold,
        max_attempts=max_attempts,
        use_cache=use_cache,
        settings=settings,
        max_cost=max_cost,
        batch=batch,
        formats=formats or None,
        second_judge_model=second_judge_model,
        against=[str(p) for p in against] if against else None,
        version_guard=version_guard,
        embedder=embedder,
    )


PRIOR_KEEP_RATE = 0.75
"""Share of generated items the planner expects to keep before it has seen any (the estimator too)."""


def split(n: int, keys: list[str]) -> dict[str, int]:
    """n over keys in equal shares, earlier keys taking the remainder: the items per format."""
    return {k: n // len(keys) + (1 if i < n % len(keys) else 0) for i, k in enumerate(keys)}


@dataclass(frozen=True)
class FormatPlan:
    """One format's share of a build: items to keep, the quota per facet, generation requests allowed."""

    name: str
    n: int
    quotas: dict[str, int]
    budget: int


@dataclass(frozen=True)
class BuildPlan:
    """Every value a build derives from spec + options, resolved once: the loop, the estimator,
    the build key and the manifest read it here, so they cannot disagree."""

    spec: ThreatModel
    options: BuildOptions
    n: int
    formats: tuple[FormatPlan, ...]
    """The formats that get items (a format whose equal share of n is 0 is left out)."""
    temperature: float
    judge_threshold: float
    embedder: str
    dedup_cutoff: float
    keep_rate_prior: float = PRIOR_KEEP_RATE

    @classmethod
    def of(cls, spec: ThreatModel, opts: BuildOptions) -> BuildPlan:
        n = opts.n if opts.n is not None else spec.defaults.n
        if n < 1:
            raise UsageError(f"--n must be at least 1, got {n}")
        for fmt in opts.formats or []:
            if fmt not in spec.formats:
                raise UsageError(f"{spec.name} has no format {fmt!r}; its formats: {', '.join(spec.formats)}")
        names = opts.formats or spec.formats
        per_format = split(n, names)
        budgets = split(opts.max_attempts, names) if opts.max_attempts is not None else {}
        formats = tuple(
            FormatPlan(fmt, n_f, spec.quotas(n_f), budgets.get(fmt, max(20, 5 * n_f)))
            for fmt, n_f in per_format.items()
            if n_f > 0
        )
        return cls(
            spec=spec,
            options=opts,
            n=n,
            formats=formats,
            temperature=opts.temperature if opts.temperature is not None else spec.defaults.temperature,
            judge_threshold=opts.judge_threshold if opts.judge_threshold is not None else spec.judge.threshold,
            embedder=opts.embedder or spec.dedup.embedder,
            dedup_cutoff=spec.dedup.cutoff(opts.embedder),
        )

    @property
    def max_attempts(self) -> int:
        return sum(f.budget for f in self.formats)

    def key(self) -> str:
        """What makes two builds the same: `mwe build` with no names skips a spec whose key is
        unchanged. It hashes the options as asked (not as resolved), so keys of earlier builds match."""
        opts = self.options
        parts = {
            "spec": self.spec.content_hash(),
            "model": opts.model,
            "judge_model": opts.judge_model or opts.model,
            "n": self.n,
            "seed": opts.seed,
            "temperature": opts.temperature,
            "judge_threshold": opts.judge_threshold,
            "formats": opts.formats,
            "second_judge_model": opts.second_judge_model,
            "against": [_file_hash(p) for p in opts.against or []],
            "version_guard": opts.version_guard,
            "embedder": opts.embedder,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build_key(spec: ThreatModel, opts: BuildOptions) -> str:
    """The key of `BuildPlan.of(spec, opts)` (see `BuildPlan.key`)."""
    return BuildPlan.of(spec, opts).key()


def _file_hash(path: str) -> str:
    file = reference_file(Path(path))
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else f"missing:{path}"


def _other(opts: BuildOptions, model: str) -> Provider:
    """A provider for another model of the build: the URL and key settings go along only when it
    is the same kind of provider as --model; the rate limits always do."""
    settings = opts.settings or ProviderSettings()
    same_kind = model.split("/", 1)[0] == opts.model.split("/", 1)[0]
    return get_provider(
        model, settings if same_kind else ProviderSettings(rpm=settings.rpm, itpm=settings.itpm, otpm=settings.otpm)
    )


def make_providers(opts: BuildOptions) -> tuple[Provider, Provider]:
    """(generation, judge) providers; the same object when the two models are the same."""
    gen = get_provider(opts.model, opts.settings or ProviderSettings())
    if not opts.judge_model or opts.judge_model == opts.model:
        return gen, gen
    return gen, _other(opts, opts.judge_model)


def request_text(req: CompletionRequest | ChatRequest) -> str:
    """All the text a generation request sent, for the prompt-leak rule."""
    return f"{req.system}\n{req.prompt}" if isinstance(req, ChatRequest) else req.prompt


def stopped_at_cap(req: CompletionRequest | ChatRequest, answer: Completion) -> bool:
    """The provider said so, or (answers cached before it could say) a completion used every token."""
    return answer.truncated or (isinstance(req, CompletionRequest) and answer.output_tokens >= req.max_tokens > 0)


class _Run:
    """One format's build: its own generator, quotas and attempt budget; engines are shared."""

    def __init__(
        self,
        plan: BuildPlan,
        fmt: FormatPlan,
        engines: tuple[Engine, Engine, Engine | None],
        reporter: Reporter,
        references: Guard | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        spec = plan.spec
        self.plan = plan
        self.spec = spec
        self.embedder = embedder
        self.n = fmt.n
        self.quotas = fmt.quotas
        self.budget = fmt.budget
        self.gen_engine, self.judge_engine, self.second_engine = engines
        self.second_votes: list[tuple[str, str | None]] = []
        self.generator = get_generator(fmt.name)(spec, plan.options.seed, chat=self.gen_engine.provider.chat)
        self.fixed = self.generator.layout == "fixed"
        self.reporter = reporter
        self.tag = f"{fmt}: " if len(spec.formats) > 1 else ""
        self.anchors = [
            (compare_text(q, options, ex.statement), ex.statement or q)
            for ex in spec.examples
            for q, options, _ in [ex.view()]
        ]
        self.references = references
        self.shot_texts = example_texts(spec)
        self.pool: list[Candidate] = []
        self.rejected: list[Rejection] = []
        self.generated = Counter[str]()
        self.next_index = Counter[tuple[str, int]]()
        self.sizes: dict[tuple[str, int], int] = {}
        """Items asked of a sample index's chat request, where fewer than a full batch are wanted."""
        self.attempts = 0
        self.rounds = 0
        self.length_cue_met = True
        self.topups = 0
        self.timings: dict[str, float] = dict.fromkeys(("generation", "label", "judge", "dedup"), 0.0)

    def side_quotas(self, facet: str) -> tuple[int, int]:
        """Fixed-order items (persona): how many of a facet's quota have the matching answer at A
        (Yes) and at B; the odd-quota facets take turns at the extra one, so the whole set stays
        balanced too."""
        turn = 0
        for name, q in self.quotas.items():
            extra = turn if q % 2 else 0
            if name == facet:
                return q // 2 + extra, q - q // 2 - extra
            turn ^= q % 2
        raise KeyError(facet)

    def side_deficits(self, facet: str) -> list[int]:
        """Items still needed for a facet, per side: one number, or for fixed-order items (persona)
        how many more with the matching answer at A and at B, so both polarities fill."""
        group = [c for c in self.pool if c.facet == facet]
        if not self.fixed:
            return [max(0, self.quotas[facet] - len(group))]
        yes, no = self.side_quotas(facet)
        have_yes = sum(c.side for c in group)
        return [max(0, yes - have_yes), max(0, no - (len(group) - have_yes))]

    def deficits(self) -> dict[str, int]:
        return {f: d for f in self.quotas if (d := sum(self.side_deficits(f))) > 0}

    def shortfall(self) -> dict[str, int]:
        have = Counter(c.facet for c in self.pool)
        return {f: q - have[f] for f, q in self.quotas.items() if q > have[f]}

    def keep_rate(self) -> float:
        produced = sum(self.generated.values())
        return len(self.pool) / produced if produced else self.plan.keep_rate_prior

    def plan_round(self) -> dict[str, list[int]]:
        """Sample indexes to ask per facet: each side's deficit divided by the keep rate seen so
        far, within the budget (in requests; a chat request asks for several items). Side s of a
        facet uses indexes s, s + sides, s + 2 * sides, …, so a full side is not asked again."""
        factor = min(4.0, max(1.2, 1.0 / max(self.keep_rate(), 0.05)))
        left = self.budget - self.attempts
        per = self.generator.items_per_request
        sides = self.generator.sides
        asks: dict[str, list[int]] = {}
        for facet in sorted(self.deficits()):
            for side, d in enumerate(self.side_deficits(facet)):
                want = math.ceil(d * factor)
                k = min(left, max(1, math.ceil(want / per))) if d > 0 else 0
                if k > 0:
                    start = self.next_index[(facet, side)]
                    indexes = [(start + j) * sides + side for j in range(k)]
                    asks.setdefault(facet, []).extend(indexes)
                    if k * per > want:  # ask for what is wanted, spread evenly, not k full batches
                        for j, i in enumerate(indexes):
                            self.sizes[(facet, i)] = max(1, want // k + (1 if j < want % k else 0))
                    self.next_index[(facet, side)] += k
                    left -= k
        return asks

    def round(self, asks: dict[str, list[int]]) -> None:
        self.rounds += 1
        requests: list[Any] = []
        samples: list[tuple[str, int]] = []
        for facet, indexes in asks.items():
            sizes = [self.sizes.get((facet, i), self.generator.items_per_request) for i in indexes]
            requests += self.generator.requests(facet, indexes, self.plan.temperature, sizes)
            samples += [(facet, i) for i in indexes]
        self.attempts += len(requests)
        label = self.gen_engine.provider.label
        t0 = time.monotonic()
        with self.reporter.stage(f"{self.tag}round {self.rounds}: generate", len(requests)) as tick:
            if self.generator.chat:
                completions = self.gen_engine.structured("generation", requests, tick)
            else:
                completions = self.gen_engine.complete("generation", requests, tick)
        self.timings["generation"] += time.monotonic() - t0
        fresh: list[Candidate] = []
        sent: dict[str, str] = {}
        capped: dict[str, int] = {}
        for req, (facet, sample), comp in zip(requests, samples, completions, strict=True):
            key = req.key(self.gen_engine.provider.name, self.gen_engine.provider.model)
            lineage = {"model": label, "seed": req.seed, "sample": sample, "request": key}
            sent[key] = request_text(req)
            if stopped_at_cap(req, comp):
                capped[key] = req.max_tokens
            cands, bad = self.generator.parse(facet, comp, lineage)
            self.generated[facet] += len(cands) + len(bad)
            fresh += cands
            self.rejected += bad
        ctx = RuleContext(sent, capped, tuple(self.quotas), self.shot_texts, self.spec.judge.min_label_confidence)
        fresh, bad = apply_rules(fresh, ctx)
        self.rejected += bad
        if self.references is not None:
            fresh, bad = self.references.check(fresh)  # before any judge call: a copy is not worth judging
            self.rejected += bad
        label_requests = self.generator.label_requests(fresh)
        if label_requests:
            t0 = time.monotonic()
            with self.reporter.stage(f"{self.tag}round {self.rounds}: label", len(label_requests)) as tick:
                probs = self.gen_engine.classify("label", label_requests, tick)
            self.generator.apply_labels(fresh, probs)
            self.timings["label"] += time.monotonic() - t0
            fresh, bad = apply_rules(fresh, ctx, after_label=True)
            self.rejected += bad
        t0 = time.monotonic()
        with self.reporter.stage(f"{self.tag}round {self.rounds}: judge", len(fresh) + 1) as tick:
            fresh, bad = judge(self.judge_engine, self.spec, fresh, self.plan.judge_threshold, tick)
        self.timings["judge"] += time.monotonic() - t0
        self.rejected += bad
        if self.judge_engine.provider.chat and fresh:
            t0 = time.monotonic()
            k = self.spec.judge.label_samples
            with self.reporter.stage(f"{self.tag}round {self.rounds}: label check", len(fresh) * k) as tick:
                fresh, bad = label_check(self.judge_engine, self.spec, fresh, tick)
            self.timings["label"] += time.monotonic() - t0
            self.rejected += bad
            fresh, bad = apply_rules(fresh, ctx, after_label=True)
            self.rejected += bad
        if self.second_engine is not None and fresh:
            t0 = time.monotonic()
            with self.reporter.stage(f"{self.tag}round {self.rounds}: second judge", len(fresh)) as tick:
                self.second_votes += second_opinion(self.second_engine, self.spec, fresh, tick)
            self.timings["label"] += time.monotonic() - t0
        t0 = time.monotonic()
        self.pool, bad = dedup(self.pool + fresh, self.plan.dedup_cutoff, self.anchors, self.embedder)
        self.timings["dedup"] += time.monotonic() - t0
        self.rejected += bad

    def _select(self, facet: str, ranked: list[Candidate]) -> tuple[list[Candidate], list[Candidate]]:
        """The best `quota` of a facet; for fixed-order items the best of each side, topped up
        from the other side only when the attempt budget ran out before a side was full."""
        quota = self.quotas[facet]
        if not self.fixed:
            return ranked[:quota], ranked[quota:]
        yes, no = self.side_quotas(facet)
        chosen = [c for c in ranked if c.side][:yes] + [c for c in ranked if not c.side][:no]
        ids = {c.id for c in chosen}
        rest = [c for c in ranked if c.id not in ids]
        chosen += rest[: quota - len(chosen)]
        ids = {c.id for c in chosen}
        return [c for c in ranked if c.id in ids], [c for c in ranked if c.id not in ids]

    def _split(self) -> tuple[dict[str, list[Candidate]], dict[str, list[Candidate]]]:
        """The pool per facet as (kept, spare), best first."""
        kept: dict[str, list[Candidate]] = {}
        spare: dict[str, list[Candidate]] = {}
        for facet in self.quotas:
            group = [c for c in self.pool if c.facet == facet]
            ranked = sorted(group, key=lambda c: -float(c.scores.get("quality", 0)))
            kept[facet], spare[facet] = self._select(facet, ranked)
        return kept, spare

    def length_cue_gap(self) -> int:
        """Swaps still missing after balancing the length cue with the spare items at hand (0 when
        the target is met): how many more items of the other kind the pool needs."""
        kept, spare = self._split()
        chosen, _, met = balance_length_cue(kept, spare)
        if met:
            return 0
        written = [c for c in chosen if c.layout == "shuffled"]
        excess = abs(sum(matching_longer(c) for c in written) - len(written) / 2)
        return max(1, math.ceil(excess - length_cue_tolerance(len(written))))

    def plan_topup(self, gap: int) -> dict[str, list[int]]:
        """More samples across the facets, so about `gap` of them (half of what is written) can
        stand in for items that carry the length cue. Within the same attempt budget."""
        per = self.generator.items_per_request
        total = min(self.budget - self.attempts, max(1, math.ceil(2 * gap / per / max(self.keep_rate(), 0.25))))
        asks: dict[str, list[int]] = {}
        facets = list(self.quotas)
        for j in range(total):
            facet = facets[j % len(facets)]
            asks.setdefault(facet, []).append(self.next_index[(facet, 0)])
            self.next_index[(facet, 0)] += 1
        return asks

    def trim(self) -> None:
        """Overshoot is normal (we over-ask): keep the best of each facet, then swap within facets
        so the matching option is not systematically the longer one; record everything dropped."""
        kept, spare = self._split()
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
                    why = "with the matching answer on this side " if self.fixed else ""
                    self.rejected.append(
                        Rejection.of(c, "quota", f"facet quota of {quota} {why}already met by better-scored items")
                    )
        order = {c.id: i for i, c in enumerate(self.pool)}
        self.pool = sorted(chosen, key=lambda c: (list(self.quotas).index(c.facet), order[c.id]))

    def run(self) -> tuple[list[Item], dict[str, int]]:
        """Fill the quotas; then, while the spare items cannot balance the length cue and budget
        is left, write more (at most three top-up rounds) rather than publish the cue."""
        while True:
            while self.deficits() and self.attempts < self.budget:
                self.round(self.plan_round())
            if self.deficits() or self.attempts >= self.budget or self.topups == 3:
                break
            gap = self.length_cue_gap() if self.generator.layout == "shuffled" else 0
            if gap == 0:
                break
            self.topups += 1
            self.round(self.plan_topup(gap))
        self.trim()
        return assign_order(self.pool, self.plan.options.seed), self.shortfall()


def _funnel(runs: list[_Run], items: list[Item]) -> tuple[dict[str, Any], dict[str, Any]]:
    rejected = [r for run in runs for r in run.rejected]
    by_stage = Counter(r.stage for r in rejected)
    generated = sum((run.generated for run in runs), Counter[str]())
    funnel = {
        "generation_requests": sum(run.attempts for run in runs),
        "generated": sum(generated.values()),
        "rejected_by_stage": {s: by_stage.get(s, 0) for s in STAGES},
        "kept": len(items),
        "rounds": sum(run.rounds for run in runs),
    }
    per_facet: dict[str, Any] = {}
    for facet in runs[0].quotas:
        st = Counter(r.stage for r in rejected if r.facet == facet)
        per_facet[facet] = {
            "generated": generated[facet],
            **{s: st.get(s, 0) for s in STAGES},
            "kept": sum(1 for i in items if i.facet == facet),
        }
    return funnel, per_facet


def shortfall_message(by_format: dict[str, Any]) -> str:
    """Which format and facets fell short, what they spent, where their items went, and the
    option that gives more: from the manifest's `generator.by_format`, so the CLI says the same."""
    parts = []
    total = sum(int(f["max_attempts"]) for f in by_format.values())
    for fmt, f in by_format.items():
        if not f["shortfall"]:
            continue
        facets = ", ".join(f"{k} by {v}" for k, v in f["shortfall"].items())
        stages = sorted(f.get("rejected_by_stage", {}).items(), key=lambda kv: -kv[1])
        why = ", ".join(f"{s} {c}" for s, c in stages[:3] if c)
        parts.append(
            f"{fmt} fell short ({facets}) after spending {f['generation_requests']} of its "
            f"{f['max_attempts']} generation requests" + (f" (rejected: {why})" if why else "")
        )
    split_note = ", split equally over the formats" if len(by_format) > 1 else ""
    return "; ".join(parts) + f"; --max-attempts {2 * total} (now {total}{split_note}) allows more requests"


def _by_format(run: _Run, items: list[Item]) -> dict[str, Any]:
    mine = [i for i in items if i.format == run.generator.name]
    stages = Counter(r.stage for r in run.rejected)
    return {
        "n": run.n,
        "layout": run.generator.layout,
        "quotas": run.quotas,
        "kept": len(mine),
        "shortfall": run.shortfall(),
        "generation_requests": run.attempts,
        "max_attempts": run.budget,
        "rejected_by_stage": {s: stages[s] for s in STAGES if stages[s]},
        "length_cue_topup_rounds": run.topups,
        "balance": position_balance(mine),
    }


def _agreement(second: Provider, votes: list[tuple[str, str | None]]) -> dict[str, Any]:
    """How often the second judge named the keyed option, over the items it saw (after the
    rubric and label judges), with Cohen's κ over the option letters it answered."""
    from .calibration import cohen_kappa

    answered = [(k, v) for k, v in votes if v is not None]
    agree = sum(k == v for k, v in answered)
    return {
        "model": second.label,
        "items": len(votes),
        "answered": len(answered),
        "agree": agree,
        "share_agree": round(agree / len(answered), 4) if answered else None,
        "kappa": round(cohen_kappa([k for k, _ in answered], [v for _, v in answered]), 4) if answered else None,
        "note": "recorded, not enforced: items the second judge disagrees with are kept",
    }


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
    second = _other(opts, opts.second_judge_model) if opts.second_judge_model else None
    for p in {id(x): x for x in (gen, jud, second) if x is not None}.values():
        p.check_ready()  # a missing key or extra fails here, before any request
    if gen.is_fake or jud.is_fake:
        reporter.warn("the fake provider writes templated text for tests and demos: this dataset is FAKE")
    own_cache = cache is None and opts.use_cache and (gen.cacheable or jud.cacheable or is_api(embedder_name))
    if own_cache:
        cache = Cache()
    runs: list[_Run] = []
    items: list[Item] = []
    embed_engines: list[Engine] = []
    try:
        guard = CostGuard(opts.max_cost)
        use = cache if opts.use_cache else None
        gen_engine = Engine(gen, use, guard=guard, batch=opts.batch)
        judge_engine = gen_engine if jud is gen else Engine(jud, use, guard=guard, batch=opts.batch)
        second_engine = Engine(second, use, guard=guard, batch=opts.batch) if second is not None else None

        def engine_for(label: str) -> Engine:
            provider = _other(opts, label)
            provider.check_ready()  # a missing key fails here, before any request
            embed_engines.append(Engine(provider, use, guard=guard))
            return embed_engines[-1]

        embedder = get_embedder(embedder_name, engine_for)
        if references is not None:  # its own instance: dedup refits `tfidf` weights on every pool
            references.embedder = embedder if embedder.stateless else get_embedder(embedder_name, engine_for)
        for fmt in plan.formats:
            engines = (gen_engine, judge_engine, second_engine)
            run = _Run(plan, fmt, engines, reporter, references, embedder)
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
    quotas = Counter[str]()
    shortfall = Counter[str]()
    for run in runs:
        quotas.update(run.quotas)
        shortfall.update(run.shortfall())
    if shortfall:
        by_format = {r.generator.name: _by_format(r, items) for r in runs}
        reporter.warn(f"{spec.name}: kept {len(items)} of {plan.n}; " + shortfall_message(by_format))
    if not all(r.length_cue_met for r in runs):
        reporter.warn(
            f"{spec.name}: the matching option is the longest in {position_balance(items)['share_matching_longer']:.0%} "
            "of items (target 50 % ± 3 %): not enough spare items to balance it; see manifest 'balance'"
        )
    funnel, per_facet = _funnel(runs, items)
    wall = time.monotonic() - started
    all_engines = [gen_engine, judge_engine, *([second_engine] if second_engine else []), *embed_engines]
    usage: dict[str, dict[str, Any]] = {}
    for e in {id(e): e for e in all_engines}.values():  # a stage two engines share is summed
        for k, v in e.ledger().items():
            usage[k] = v if k not in usage else {f: usage[k][f] + x for f, x in v.items()}
    prompts_hash = {k: v for e in all_engines for k, v in e.prompts_hash().items()}
    first = runs[0]
    spread = diversity([i.text for i in items], [i.facet for i in items], seed=opts.seed)
    timings = {k: sum(r.timings[k] for r in runs) for k in first.timings}

    def make_manifest(version: int, counts: dict[str, int]) -> dict[str, Any]:
        return {
            "mwe_version": __version__,
            "threat_model": spec.name,
            "version": version,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "fake": gen.is_fake or jud.is_fake,
            "build_key": plan.key(),
            "build": {
                "n": plan.n,
                "seed": opts.seed,
                "temperature": plan.temperature,
                "max_attempts": plan.max_attempts,
                "cache": opts.use_cache,
                "batch": opts.batch,
                "max_cost_usd": opts.max_cost,
            },
            "models": {
                "generation": {**gen.describe(), "label": gen.label},
                "judge": {**jud.describe(), "label": jud.label},
            },
            "generator": {
                "formats": [r.generator.name for r in runs],
                "by_format": {r.generator.name: _by_format(r, items) for r in runs},
            },
            "judge": {
                "method": judge_method(judge_engine),
                "threshold": plan.judge_threshold,
                "min_label_confidence": spec.judge.min_label_confidence,
                "second": _agreement(second, [v for r in runs for v in r.second_votes]) if second else None,
            },
            "rules": {
                "checks": list(RULES),
                "leak_min_words": LEAK_MIN_WORDS,
                "leak_min_words_example": LEAK_MIN_WORDS_EXAMPLE,
            },
            "dedup": {
                "embedder": embedder_name,
                "threshold": plan.dedup_cutoff,
                "against": references.describe() if references is not None else [],
            },
            "diversity": spread,
            "spec_path": spec_path,
            "spec_hash": spec.content_hash(),
            "prompts_hash": prompts_hash,
            "spec": spec.model_dump(mode="json"),
            "counts": counts,
            "quotas": dict(quotas),
            "facet_counts": dict(Counter(i.facet for i in items)),
            "shortfall": dict(shortfall),
            "funnel": funnel,
            "funnel_by_facet": per_facet,
            "balance": position_balance(items),
            "usage": usage,
            "cost": _cost_summary(usage, gen, jud),
            "timings_s": {k: round(v, 3) for k, v in {**timings, "total": wall}.items()},
        }

    path = store.publish(
        spec.name,
        [i.model_dump(mode="json", exclude_none=True) for i in items],
        [r.model_dump(mode="json", exclude_none=True) for run in runs for r in run.rejected],
        make_manifest,
        render_card,
    )
    from .store import load

    return load(path)


def _label_requests_one(spec: ThreatModel, cands: list[Candidate]) -> list[Any]:
    from .filters.label import label_requests

    return label_requests(spec, cands, 1)


def _batched_size(spec: ThreatModel, proxies: list[Candidate], make: Any, k: int) -> tuple[float, int]:
    """(input, most output) tokens of one request of `k` items, from the spec's examples: the
    fixed prefix and the mean item size, measured from single-item and all-in-one requests."""
    from .costs import request_size

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
    from .costs import request_size
    from .filters.judge import logprob_requests, rubric_requests

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
