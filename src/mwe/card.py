"""The dataset card (README.md inside each version), rendered from the manifest alone."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .manifest import Manifest

__all__ = ["render_card"]


def render_card(m: Manifest) -> str:
    spec = m.spec
    models = m.models
    lines = [f"# {spec['title']} — {m.threat_model} v{m.version}", ""]
    if m.fake:
        lines += [
            "> **FAKE DATA.** Made by the `fake` provider, which writes templated text for tests and demos.",
            "> Do not use these items to measure a model.",
            "",
        ]
    lines += [
        "## What it measures",
        "",
        spec["definition"].strip(),
        "",
        f"- Matching answer: {spec['matching'].strip()}",
        f"- Not-matching answer: {spec['not_matching'].strip()}",
        "",
        "## How it was made",
        "",
        f"Written by `{models.generation.label}` with mwe {m.mwe_version} from spec "
        f"`{m.threat_model}` (spec version {spec['version']}, sha256 `{m.spec_hash[:12]}`), seed {m.build.seed}.",
        "Formats: " + ", ".join(f"`{fmt}` ({row.kept} items)" for fmt, row in m.generator.by_format.items()) + ".",
        f"Judged by `{models.judge.label}` ({m.judge.method}, kept score >= {m.judge.threshold}); "
        f"near duplicates removed with {m.dedup.embedder} at cosine >= {m.dedup.threshold}.",
        "",
        "## Counts",
        "",
        f"{m.counts.items} items kept of {m.build.n} asked; {m.counts.rejected} rejections "
        "(in `rejected.jsonl`, each with its stage and reason).",
        "",
        "| facet | quota | kept |",
        "| --- | ---: | ---: |",
    ]
    for facet, quota in m.quotas.items():
        lines.append(f"| {facet} | {quota} | {m.facet_counts.get(facet, 0)} |")
    lines += ["", "| stage | rejected |", "| --- | ---: |"]
    for stage, count in m.funnel.rejected_by_stage.items():
        lines.append(f"| {stage} | {count} |")
    bal = m.balance
    lines += [
        "",
        f"Matching answer at (A): {bal.matching_at_A} of {m.counts.items}; "
        f"matching option is the longer one in {bal.share_matching_longer} of items.",
        "",
        "## Known limits",
        "",
    ]
    if m.shortfall:
        short = ", ".join(f"{k}: {v}" for k, v in m.shortfall.items())
        lines.append(f"- **Short of the quota** within the attempt budget: {short}.")
    if models.generation.provider == "local":
        lines.append(
            "- Written by a 270M-parameter *base* model: expect awkward wording and some wrong labels; "
            "use it to try the pipeline, and a strong API model for data you will report."
        )
    if not bal.length_cue_within_target:
        lines.append(
            f"- The matching option is the longer one in {bal.share_matching_longer} of items (target 0.5 ± 0.03): "
            "a model that picks the longer option scores above chance."
        )
    lines += _review_lines(m) or [
        "- Labels are model-written and judged by a model; spot-check before publishing results.",
    ]
    lines += [
        "",
        "## Using it",
        "",
        "`mwe export <this folder> --format inspect` writes an Inspect AI task (also `anthropic-evals`, `hf`, "
        "`csv`); `mwe report <this folder>` an HTML overview with every rejection and its reason.",
        "",
        "## Licence",
        "",
        spec.get("examples_licence") or "No third-party examples were reused.",
        "",
    ]
    return "\n".join(lines)


def _share(est: dict[str, Any]) -> str:
    if est["rate"] is None:
        return "no items to estimate from"
    lo, hi = est["ci95"]
    return f"{est['errors']} of {est['n']} ({est['rate']:.0%}, 95 % interval {lo:.0%} to {hi:.0%})"


def _review_lines(m: Manifest) -> list[str]:
    """Known-limits lines for a version made from a person's review (`mwe build --from-review`)."""
    r = m.review
    if not r:
        return []
    d = r.decisions
    unseen = m.counts.items - d["accept"] - d["relabel"] - d["ambiguous"]
    return [
        f"- **A person reviewed {r.reviewed} of the {r.items_in_version} items** of v{r.from_version} "
        f"(reviewer `{r.reviewer}`, {'a stratified random sample' if r.sample else 'every item under review'}): "
        f"accepted {d['accept']}, relabelled {d['relabel']}, rejected {d['reject']} (moved to `rejected.jsonl`, "
        f"stage `human`), ambiguous {d['ambiguous']}.",
        f"- Estimated label-error rate (relabelled among the items a person labelled): {_share(r.label_error)}; "
        f"items that could not be published as written (relabelled or rejected): {_share(r.not_publishable)}. "
        f"The {unseen} items nobody reviewed are expected to carry errors at about these rates.",
    ]
