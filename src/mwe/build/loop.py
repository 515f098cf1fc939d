"""One format's build loop: plan a round, generate, rules, label, judge, dedup; then select
the best items per facet and balance the length cue. It loops until every facet quota is met by
*kept* items or the attempt budget is spent; every candidate ends kept or rejected with a reason."""

from __future__ import annotations

import math
import time
from collections import Counter
from typing import Any

from ..balance import assign_order, balance_length_cue, length_cue_tolerance, matching_longer
from ..embedders import Embedder
from ..engine import Engine
from ..filters import apply_rules, dedup, judge, label_check
from ..filters.contamination import Guard
from ..filters.label import second_opinion
from ..filters.rules import RuleContext, example_texts
from ..generators import get_generator
from ..items import Candidate, Item, Rejection
from ..progress import Reporter
from ..providers.base import ChatRequest, Completion, CompletionRequest
from .plan import BuildPlan, FormatPlan

__all__ = ["FormatRun", "request_text", "stopped_at_cap"]


def request_text(req: CompletionRequest | ChatRequest) -> str:
    """All the text a generation request sent, for the prompt-leak rule."""
    return f"{req.system}\n{req.prompt}" if isinstance(req, ChatRequest) else req.prompt


def stopped_at_cap(req: CompletionRequest | ChatRequest, answer: Completion) -> bool:
    """The provider said so, or (answers cached before it could say) a completion used every token."""
    return answer.truncated or (isinstance(req, CompletionRequest) and answer.output_tokens >= req.max_tokens > 0)


class FormatRun:
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
        self.tag = f"{fmt.name}: " if len(spec.formats) > 1 else ""
        self.anchors = [ex.anchor() for ex in spec.examples]
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
