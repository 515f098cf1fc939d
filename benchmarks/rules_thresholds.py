"""How the prompt-leak rule's threshold was chosen: copied spans of good items vs leaked ones.

The rule (mwe.filters.rules, `prompt_leak`) rejects an item when one of its fields copies
`LEAK_MIN_WORDS` consecutive words of the request that wrote it less its few-shot items, or
`LEAK_MIN_WORDS_EXAMPLE` of the whole request (case and punctuation ignored; the facet names,
which a request states and an item may repeat, never count). This script
measures the longest copied span against real requests, built by mwe's own generators from the
shipped specs (completion prompts for the embedded model and chat prompts for API models):

- good items: anthropics/evals items on the same behaviour as the spec (LM-written and
  human-written advanced-ai-risk files, persona statements), leaving out the spec's own few-shot
  examples; and the fake provider's items for every shipped spec;
- leaked items: the same good items with one part of their request copied in: a variance prompt
  as an option (or after a statement), the facet description after the stem, one instruction
  sentence of the request, or a few-shot item's question (only parts the request contains).

Two spans are measured per item: words copied from the request less its few-shot items
(instructions, definition, variance prompt, facet descriptions), and words copied from the whole
request. Good items imitate the few-shot items, so the second needs a higher threshold. Measured
on 2026-12-04 (`python benchmarks/rules_thresholds.py`; 1,314 LM-written and 893 human-written
held-out anthropics/evals items over the shipped specs, 312 fake items; half the requests in the
completion layout, half in the chat layout):

    N  copied from the request less its few-shot items    copied from the whole request
       good: LM / human / fake   leaked: variance / instruction / facet   good: LM / human   leaked few-shot
    4        0.30 / 0.56 / 2.56 %        100 / 100 / 100 %                 22.0 / 47.6 %      100 %
    5        0.08 / 0.00 / 0.00 %        100 / 100 / 100 %                  8.7 / 22.6 %      100 %
    6        0    / 0    / 0    %         84 / 100 / 100 %                  4.4 / 12.4 %      100 %
    8        0    / 0    / 0    %         50 /  99 /  94 %                  0.4 /  2.2 %       99 %
    10       0    / 0    / 0    %         18 /  92 /  74 %                  0.15 / 0.67 %      94 %

The shortest variance prompts of the shipped specs have five words ("make the change sound
permanent"), so 5 words of instructions catch every injected variance prompt, instruction
sentence and facet description while rejecting 1 of 2,207 good items; 10 words of a few-shot
item catch 94 % of copied few-shot questions (the rest are shorter; dedup compares whole items
with the few-shot items too) and reject 0.15 % / 0.67 % of good items. The rule as a whole rejects 0.23 % of the LM-written
(3), 0.67 % of the human-written (6) and none of the fake items (`--show` prints them): eight
repeat 12 to 26 words of a spec's few-shot item (the human-written corrigibility set says "This
won't change your other functions, but will make you care less about other goals" in many items,
and the spec reuses it), one echoes five words of a definition ("equally helpful, honest and
harmless as"). Caveat: the public items were
not written from these requests; a model that reads the definition may echo it more.

It also prints the figures behind the other two rules, over all 24,516 advanced-ai-risk items:
134 of their 50,067 options (0.27 %) end mid-sentence by the truncation rule's test, and in 6,201
A/B items (25.3 %) the two options are one word apart, which is why the near-duplicate rule
compares only options on the same side.

On the embedded model (a 12-item power-seeking build, `mwe build power-seeking --n 12`, 30 items
generated on 2026-12-04) the rules rejected 4 prompt leaks, all real: three persona statements that
copy a variance prompt ("make it a realistic workplace scenario", "a public institution rather
than a company", "option sound helpful or prosocial") and one that copies 10 words of a few-shot
statement; and 7 persona statements whose label check leaned against their key (0.35 to 0.49).

    python benchmarks/rules_thresholds.py --data DIR [--per-spec 150] [--show]

DIR holds a copy of anthropics/evals (CC-BY-4.0) with its advanced-ai-risk/ and persona/ folders,
which the repository does not ship (default: shared/data/anthropic-evals beside the repository's
folder); without them the script says so and stops.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from mwe.build import request_text
from mwe.filters.rules import LEAK_MIN_WORDS, LEAK_MIN_WORDS_EXAMPLE, copied_span, example_texts
from mwe.generators import get_generator
from mwe.providers.fake import FakeProvider
from mwe.spec import ThreatModel, known_specs, load_spec, shipped_dir

HERE = Path(__file__).parent
_OPTION = re.compile(r"^\s*\(([A-H])\)\s*(.*)$")
THRESHOLDS = range(4, 13)


def split_question(text: str) -> tuple[str, list[str]]:
    """An anthropics/evals advanced-ai-risk question: the stem and its "(A) …" options."""
    stem: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        m = _OPTION.match(line)
        if m:
            options.append(m.group(2).strip())
        elif options and line.strip():
            options[-1] += " " + line.strip()
        elif not options:
            stem.append(line.strip())
    body = " ".join(s for s in stem if s).removeprefix("Question:").strip()
    body = re.sub(r"\s*Choices:\s*$", "", body)
    options = [re.sub(r"\s*Answer:\s*$", "", o) for o in options]
    return body, options


def public_items(spec: ThreatModel, data: Path, limit: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    """Held-out anthropics/evals items on the spec's behaviour, by where they come from."""
    shots = {(ex.question or ex.statement or "").strip() for ex in spec.examples}
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for source in sorted({ex.source for ex in spec.examples if ex.source}):
        name = source.split("/")[-1].split()[0]
        if "advanced-ai-risk" in source:
            for kind, folder in (("LM-written", "lm_generated_evals"), ("human-written", "human_generated_evals")):
                path = data / "advanced-ai-risk" / folder / name
                if not path.is_file():
                    continue
                rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
                rng.shuffle(rows)
                for row in rows[:limit]:
                    stem, options = split_question(row["question"])
                    if stem and len(options) >= 2 and stem not in shots:
                        out[kind].append({"fields": [stem, *options], "format": "mcq"})
        elif "persona" in source:
            path = data / "persona" / name
            if path.is_file():
                rows = [json.loads(line) for line in path.open(encoding="utf-8") if line.strip()]
                rng.shuffle(rows)
                for row in rows[:limit]:
                    if row["statement"].strip() not in shots:
                        out["LM-written"].append({"fields": [row["statement"]], "format": "persona"})
    return out


def fake_items(spec: ThreatModel, per_format: int) -> list[dict[str, Any]]:
    """The fake provider's items, each with the request that wrote it."""
    items = []
    for fmt in spec.formats:
        gen = get_generator(fmt)(spec, 0, chat=False)
        for fi, facet in enumerate(f.name for f in spec.facets):
            reqs = gen.requests(facet, list(range(per_format)), spec.defaults.temperature)
            answers = FakeProvider(bad_rate=0.0).complete(reqs)  # type: ignore[arg-type]
            for i, (req, answer) in enumerate(zip(reqs, answers, strict=True)):
                cands, _ = gen.parse(facet, answer, {"sample": i})
                for c in cands:
                    fields = (
                        [str(c.fields["statement"])]
                        if "statement" in c.fields
                        else [c.question, c.matching, *c.not_matching]
                    )
                    items.append({"fields": fields, "request": request_text(req), "facet_index": fi})
    return items


def request_for(spec: ThreatModel, fmt: str, chat: bool, k: int) -> tuple[str, str, str | None, str]:
    """(request text, facet, its variance prompt, the request's instruction part) for sample k."""
    gen = get_generator(fmt if fmt in spec.formats else spec.formats[0])(spec, 0, chat=chat)
    facet = spec.facets[k % len(spec.facets)].name
    req = gen.requests(facet, [k], spec.defaults.temperature)[0]
    text = request_text(req)
    head = re.split(r"\n(?:Topic:|Examples)", text, maxsplit=1)[0]
    return text, facet, gen.variance(k), head


def spans(fields: list[str], request: str, facets: tuple[str, ...], shots: tuple[str, ...]) -> tuple[int, int]:
    """(longest span copied from the request less its few-shot items, longest from all of it)."""
    return (
        max(copied_span(f, request, facets + shots)[0] for f in fields),
        max(copied_span(f, request, facets)[0] for f in fields),
    )


def contained(text: str, request: str) -> bool:
    return copied_span(text, request)[0] == len(copied_span(text, text)[1].split())


def leaks(
    fields: list[str],
    persona: bool,
    spec: ThreatModel,
    request: str,
    facet: str,
    variance: str | None,
    head: str,
    rng: random.Random,
) -> dict[str, list[str]]:
    """The item with one part of its request copied in, per kind of leak."""
    out: dict[str, list[str]] = {}

    def into(extra: str) -> list[str]:
        if persona:
            return [f"{fields[0].rstrip('.')}, {extra}"]
        return [f"{fields[0]} {extra}", *fields[1:]]

    if variance:
        sentence = variance[0].upper() + variance[1:].rstrip(".") + "."
        out["variance"] = into(sentence) if persona else [fields[0], fields[1], sentence, *fields[3:]]
    description = next((f.description for f in spec.facets if f.name == facet), "")
    if description and contained(description, request):
        out["facet"] = into(f"This is about {description}.")
    sentences = [s for s in re.split(r"(?<=[.:])\s+|\n", head) if len(s.split()) >= 8]
    if sentences:
        out["instruction"] = into(rng.choice(sentences))
    shots = [str(ex.question or ex.statement).strip() for ex in spec.examples if (ex.question or ex.statement)]
    shots = [q for q in shots if contained(q, request)]
    if shots:
        out["few-shot"] = into(rng.choice(shots))
    return out


def option_figures(data: Path) -> None:
    """The figures behind the truncation and near-duplicate rules, over every advanced-ai-risk
    item: options the truncation rule calls cut off, and A/B items whose two options are one word
    apart (the contrast the near-duplicate rule leaves alone)."""
    from mwe.filters.rules import _one_word_apart, _words, ends_mid_sentence

    options = cut = items = one_word = 0
    for path in sorted((data / "advanced-ai-risk").glob("*_generated_evals/*.jsonl")):
        for line in path.open(encoding="utf-8"):
            _, opts = split_question(json.loads(line)["question"])
            items += 1
            options += len(opts)
            cut += sum(ends_mid_sentence("option", o) for o in opts)
            one_word += len(opts) == 2 and _one_word_apart(_words(opts[0]), _words(opts[1]))
    print(f"\noptions ending mid-sentence: {cut} of {options} ({cut / options:.2%})")
    print(f"A/B items whose options are one word apart: {one_word} of {items} ({one_word / items:.1%})")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--data",
        default=str(HERE.parents[1] / "shared/data/anthropic-evals"),
        help="a copy of anthropics/evals with its advanced-ai-risk/ and persona/ folders",
    )
    ap.add_argument("--per-spec", type=int, default=150)
    ap.add_argument("--show", action="store_true", help="print the good items the rule would reject")
    args = ap.parse_args()
    rng = random.Random(0)
    data = Path(args.data)
    if not (data / "advanced-ai-risk").is_dir() or not (data / "persona").is_dir():
        sys.exit(f"skipped: no copy of anthropics/evals (advanced-ai-risk/ and persona/) in {data}; pass --data DIR")
    good: dict[str, list[tuple[int, int]]] = defaultdict(list)
    leaked: dict[str, list[tuple[int, int]]] = defaultdict(list)
    worst: dict[str, tuple[int, str]] = {}
    for name, path in sorted(known_specs([shipped_dir()]).items()):
        spec = load_spec(path)
        facets = tuple(f.name for f in spec.facets)
        shots = example_texts(spec)
        for item in fake_items(spec, 6):
            good["fake"].append(spans(item["fields"], item["request"], facets, shots))
        for kind, items in public_items(spec, data, args.per_spec, rng).items():
            for k, item in enumerate(items):
                persona = item["format"] == "persona"
                fmt = "persona" if persona else "mcq"
                if fmt not in spec.formats and not (fmt == "mcq" and set(spec.formats) & {"mcq", "sycophancy"}):
                    fmt = spec.formats[0]
                request, facet, variance, head = request_for(spec, fmt, chat=k % 2 == 1, k=k)
                pair = spans(item["fields"], request, facets, shots)
                good[kind].append(pair)
                if pair[0] > worst.get(kind, (0, ""))[0]:
                    span = max((copied_span(f, request, facets + shots) for f in item["fields"]), key=lambda s: s[0])
                    worst[kind] = (pair[0], f"{name}: {span[1]}")
                if args.show and (pair[0] >= LEAK_MIN_WORDS or pair[1] >= LEAK_MIN_WORDS_EXAMPLE):
                    print(f"good {kind} item rejected ({name}, spans {pair}): {item['fields'][0][:160]!r}")
                for leak, fields in leaks(item["fields"], persona, spec, request, facet, variance, head, rng).items():
                    leaked[leak].append(spans(fields, request, facets, shots))
    print("items:", {k: len(v) for k, v in good.items()}, {k: len(v) for k, v in leaked.items()})
    print("longest instruction span of a good item:", worst)
    for part, label in ((0, "the request less its few-shot items"), (1, "the whole request")):
        print(f"\nshare with a span of at least N words copied from {label}")
        print("N    " + "  ".join(f"{k:>13}" for k in [*good, *leaked]))
        for t in THRESHOLDS:
            cells = [sum(p[part] >= t for p in v) / len(v) for v in [*good.values(), *leaked.values()]]
            print(f"{t:<4} " + "  ".join(f"{c:>13.2%}" for c in cells))
    option_figures(data)
    rule = (LEAK_MIN_WORDS, LEAK_MIN_WORDS_EXAMPLE)
    print(f"\nthe rule ({rule[0]} words of instructions, or {rule[1]} of the whole request): share rejected")
    for k, v in [*good.items(), *leaked.items()]:
        hit = sum(p[0] >= rule[0] or p[1] >= rule[1] for p in v) / len(v)
        print(f"  {k:>13}: {hit:.2%} of {len(v)}")


if __name__ == "__main__":
    main()
