"""Paid tokens per kept item: mwe's defaults against a naive ARENA-style pipeline, on loopback.

Both pipelines build power-seeking (A/B questions and persona statements, half each) to the same
number of kept items against the loopback server (tests/loopback.py), which speaks the Anthropic
and OpenAI wire formats through the real SDKs, reports usage with prompt-cache reads the way each
API does (its minimum cacheable prefix, 1,024 tokens, included) and plants the quality loss of
long answers (`--drift`: item i of a generated batch is faulty with probability drift × i).

- naive: written here with the raw SDKs, as in ARENA's model-written evals chapter: 4 items per
  generation call, then one rubric-judge call and one label call per item, no prompt caching
  asked for (OpenAI caches long prefixes by itself, so whatever it reports is counted). It uses
  mwe's own prompt texts, so the difference is batching and caching, not wording.
- mwe: `mwe.generate(...)` with the spec's defaults (response cache off, so every request is paid).

Both apply the rubric judge and the label check to every kept item (checked below). Prices are
the list prices on mwe's provider classes (`Provider.prices`): paid input = uncached input + cache writes and reads at their
multiples; cost adds output. Then a sweep of items per request (generation; judge and label)
shows the rejection share and the cost per kept item each size gives, which set the defaults.

    python benchmarks/cost.py [--n 150] [--drift 0.01] [--no-sweep]

Goals (issue 21): paid input cost per kept item ≤ 0.4× the naive pipeline's, requests per kept
item ≤ 0.5×, for both providers' prices.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.loopback import Loopback

import mwe
from mwe.costs import Price, price_for
from mwe.filters.judge import RubricVerdict, as_data, display_order, rubric_system
from mwe.filters.label import LabelVerdict, label_system, shuffled
from mwe.generators import get_generator
from mwe.items import Candidate
from mwe.spec import LETTERS, ThreatModel, find_spec, load_spec

MODELS = {"anthropic": "anthropic/claude-sonnet-4-5", "openai": "openai/gpt-4.1"}
NAIVE_PER_CALL = 4


@dataclass
class Tally:
    requests: int = 0
    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0
    kept: int = 0
    generated: int = 0
    stages: Counter[str] = field(default_factory=Counter)

    def paid_input(self, p: Price) -> float:
        return (self.input + self.cache_write * p.cache_write + self.cache_read * p.cache_read) * p.input / 1e6

    def cost(self, p: Price) -> float:
        return self.paid_input(p) + self.output * p.output / 1e6


# --- the naive pipeline -----------------------------------------------------------------------


class Naive:
    """One SDK call per request, no batching of checks, no cache_control."""

    def __init__(self, kind: str, url: str) -> None:
        self.kind = kind
        self.tally = Tally()
        if kind == "anthropic":
            import anthropic

            self.client: Any = anthropic.Anthropic(api_key="sk-ant-bench", base_url=url, max_retries=0)
        else:
            import openai

            self.client = openai.OpenAI(api_key="sk-bench", base_url=url + "/v1", max_retries=0)

    def ask(self, system: str, prompt: str, schema: Any, max_tokens: int) -> dict[str, Any]:
        t = self.tally
        t.requests += 1
        if self.kind == "anthropic":
            tool = {"name": schema.__name__, "description": "answer", "input_schema": schema.model_json_schema()}
            msg = self.client.messages.create(
                model="claude-sonnet-4-5",
                system=system,
                messages=[{"role": "user", "content": prompt}],
                tools=[tool],
                tool_choice={"type": "tool", "name": schema.__name__},
                max_tokens=max_tokens,
            )
            u = msg.usage
            t.input += u.input_tokens
            t.output += u.output_tokens
            t.cache_read += u.cache_read_input_tokens or 0
            t.cache_write += u.cache_creation_input_tokens or 0
            data = next(b.input for b in msg.content if b.type == "tool_use")
        else:
            fn = {"name": schema.__name__, "parameters": schema.model_json_schema()}
            resp = self.client.chat.completions.create(
                model="gpt-4.1",
                messages=[{"role": "system", "content": system}, {"role": "user", "content": prompt}],
                tools=[{"type": "function", "function": fn}],
                tool_choice={"type": "function", "function": {"name": schema.__name__}},
                max_tokens=max_tokens,
            )
            u = resp.usage
            cached = u.prompt_tokens_details.cached_tokens if u.prompt_tokens_details else 0
            t.input += u.prompt_tokens - (cached or 0)
            t.cache_read += cached or 0
            t.output += u.completion_tokens
            data = json.loads(resp.choices[0].message.tool_calls[0].function.arguments)
        return dict(schema.model_validate(data).model_dump())

    def check(self, spec: ThreatModel, c: Candidate) -> bool:
        """One rubric-judge call and one label call for this item."""
        choices, answer = display_order(c)
        item = {"question": c.question, "choices": dict(zip(LETTERS, choices, strict=False)), "matching": answer}
        verdict = self.ask(rubric_system(spec), as_data(item), RubricVerdict, 200)
        self.tally.stages["judge"] += 1
        if verdict["score"] < spec.judge.threshold:
            return False
        shown = shuffled(c)
        keyless = {"question": c.question, "choices": dict(zip(LETTERS, shown, strict=False))}
        label = self.ask(label_system(spec), as_data(keyless), LabelVerdict, 150)
        self.tally.stages["label"] += 1
        at = LETTERS.index(label["answer"])
        return at < len(shown) and shown[at] == c.matching

    def build(self, spec: ThreatModel, n: int) -> list[Candidate]:
        """Per format and facet (and persona side), calls of 4 items until the quota is kept."""
        kept: list[Candidate] = []
        per_format = {f: n // len(spec.formats) + (i < n % len(spec.formats)) for i, f in enumerate(spec.formats)}
        for fmt, n_f in per_format.items():
            gen = get_generator(fmt)(spec, 0, chat=True)
            for facet, quota in spec.quotas(n_f).items():
                sides = [quota] if gen.sides == 1 else [quota - quota // 2, quota // 2]
                for side, need in enumerate(sides):
                    got, i = 0, 0
                    while got < need and i < 60:
                        index = i * gen.sides + side
                        req = gen.requests(facet, [index], 1.0, [NAIVE_PER_CALL])[0]
                        data = self.ask(req.system, req.prompt, req.schema, req.max_tokens)
                        self.tally.stages["generation"] += 1
                        cands, bad = gen.parse_data(facet, data, {"sample": index})
                        self.tally.generated += len(cands) + len(bad)
                        for c in cands:
                            if got < need and self.check(spec, c):
                                kept.append(c)
                                got += 1
                        i += 1
        self.tally.kept = len(kept)
        return kept


# --- mwe ----------------------------------------------------------------------------------------


def mwe_build(srv: Loopback, model: str, n: int, out: Path, spec: ThreatModel | str = "power-seeking") -> Tally:
    url = srv.url + ("/v1" if model.startswith("openai") else "")
    ds = mwe.generate(spec, n=n, model=model, out=out, base_url=url, use_cache=False)
    assert all("quality" in i.scores and i.scores.get("label_agreement") is True for i in ds), "a check was skipped"
    t = Tally(kept=len(ds), generated=ds.manifest["funnel"]["generated"])
    for stage, u in ds.manifest["usage"].items():
        t.requests += u["sent"]
        t.stages[stage] += u["sent"]
        t.input += u["input_tokens"]
        t.output += u["output_tokens"]
        t.cache_read += u["prompt_cache_read_tokens"]
        t.cache_write += u["prompt_cache_write_tokens"]
    return t


def row(name: str, t: Tally, p: Price) -> str:
    k = max(1, t.kept)
    return (
        f"| {name} | {t.kept} | {t.requests / k:.2f} | {t.input / k:,.0f} | {t.cache_read / k:,.0f} | "
        f"{t.cache_write / k:,.0f} | ${1000 * t.paid_input(p) / k:.3f} | ${1000 * t.cost(p) / k:.3f} |"
    )


def compare(n: int, drift: float, root: Path) -> None:
    spec = load_spec(find_spec("power-seeking"))
    print(f"\n## {n} kept items of power-seeking, planted drift {drift} (per 1,000 kept items in $)\n")
    print(
        "| pipeline | kept | requests/item | input tok/item | cache-read tok/item | cache-write tok/item | paid input $/1k items | total $/1k items |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ratios = []
    for kind, model in MODELS.items():
        price = price_for(model)
        assert price is not None
        with Loopback(drift=drift) as srv:
            naive = Naive(kind, srv.url)
            naive.build(spec, n)
        with Loopback(drift=drift) as srv:
            ours = mwe_build(srv, model, n, root / f"out-{kind}")
        print(row(f"naive, {model}", naive.tally, price))
        print(row(f"mwe, {model}", ours, price))
        per = lambda t, v: v / max(1, t.kept)  # noqa: E731
        ratios.append(
            (
                model,
                per(ours, ours.paid_input(price)) / per(naive.tally, naive.tally.paid_input(price)),
                per(ours, ours.requests) / per(naive.tally, naive.tally.requests),
                per(ours, ours.cost(price)) / per(naive.tally, naive.tally.cost(price)),
                dict(ours.stages),
                dict(naive.tally.stages),
            )
        )
    print()
    for model, paid, reqs, total, s_ours, s_naive in ratios:
        verdict = "met" if paid <= 0.4 and reqs <= 0.5 else "NOT met"
        print(
            f"{model}: paid input per kept item {paid:.2f}× naive (goal ≤ 0.4), requests {reqs:.2f}× (goal ≤ 0.5), "
            f"total cost {total:.2f}× — {verdict}; requests by stage mwe {s_ours}, naive {s_naive}"
        )


def sweep(n: int, drift: float, root: Path) -> None:
    """Generation items per request (judge batch fixed), then judge items per request (generation
    fixed), each format alone; rejection share = generated items that were not kept or spare."""
    import yaml

    base = yaml.safe_load(find_spec("power-seeking").read_text())
    model = MODELS["anthropic"]
    price = price_for(model)
    assert price is not None
    print(f"\n## Items per request, {n} kept items per format, planted drift {drift}, {model} prices\n")
    print(
        "| format | generation k | judge k | generated/kept | rejected before quota | requests/item | paid input $/1k items |"
    )
    print("|---|---|---|---|---|---|---|")
    settings = [(fmt, k, 10) for fmt in ("mcq", "persona") for k in (4, 8, 12, 16, 24)]
    settings += [("mcq", 8, j) for j in (1, 5, 10, 20, 40)]
    for fmt, k, j in settings:
        data = json.loads(json.dumps(base))
        data["formats"] = [fmt]
        data["examples"] = [e for e in data["examples"] if e.get("format", "mcq") == fmt]
        data.setdefault("defaults", {})["items_per_request"] = {fmt: k}
        data["judge"]["items_per_request"] = j
        path = root / f"sweep-{fmt}-{k}-{j}.yaml"
        path.write_text(yaml.safe_dump(data))
        with Loopback(drift=drift) as srv:
            out = root / f"sweep-{fmt}-{k}-{j}"
            ds = mwe.generate(path, n=n, model=model, out=out, base_url=srv.url, use_cache=False)
        f = ds.manifest["funnel"]
        bad = sum(f["rejected_by_stage"][s] for s in ("parse", "rules", "label", "dedup", "judge", "judge_error"))
        t = Tally(kept=len(ds), generated=f["generated"])
        for u in ds.manifest["usage"].values():
            t.requests += u["sent"]
            t.input += u["input_tokens"]
            t.output += u["output_tokens"]
            t.cache_read += u["prompt_cache_read_tokens"]
            t.cache_write += u["prompt_cache_write_tokens"]
        kept = max(1, len(ds))
        print(
            f"| {fmt} | {k} | {j} | {f['generated'] / kept:.2f} | {bad / max(1, f['generated']):.1%} | "
            f"{t.requests / kept:.2f} | ${1000 * t.paid_input(price) / kept:.3f} |",
            flush=True,
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=150, help="kept items per build")
    ap.add_argument("--drift", type=float, default=0.01, help="planted fault rate per position in a generated batch")
    ap.add_argument("--no-sweep", action="store_true", help="skip the items-per-request sweep")
    args = ap.parse_args()
    os.environ["ANTHROPIC_API_KEY"] = "sk-ant-bench"
    os.environ["OPENAI_API_KEY"] = "sk-bench"
    root = Path(tempfile.mkdtemp(prefix="mwe-cost-"))
    os.environ["MWE_CACHE_DIR"] = str(root / "cache")
    compare(args.n, args.drift, root)
    if not args.no_sweep:
        sweep(args.n // 2, args.drift, root)


if __name__ == "__main__":
    main()
