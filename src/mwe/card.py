"""The dataset card (README.md inside each version), rendered from the manifest alone."""

from __future__ import annotations

from typing import Any

__all__ = ["render_card"]


def render_card(m: dict[str, Any]) -> str:
    spec = m["spec"]
    models = m["models"]
    lines = [f"# {spec['title']} — {m['threat_model']} v{m['version']}", ""]
    if m.get("fake"):
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
        f"Written by `{models['generation']['label']}` with mwe {m['mwe_version']} from spec "
        f"`{m['threat_model']}` (spec version {spec['version']}, sha256 `{m['spec_hash'][:12]}`), seed {m['build']['seed']}.",
        "Formats: "
        + ", ".join(
            f"`{fmt}` ({row['kept']} items)" for fmt, row in m.get("generator", {}).get("by_format", {}).items()
        )
        + ".",
        f"Judged by `{models['judge']['label']}` ({m['judge']['method']}, kept score >= {m['judge']['threshold']}); "
        f"near duplicates removed with {m['dedup']['embedder']} at cosine >= {m['dedup']['threshold']}.",
        "",
        "## Counts",
        "",
        f"{m['counts']['items']} items kept of {m['build']['n']} asked; {m['counts']['rejected']} rejections "
        "(in `rejected.jsonl`, each with its stage and reason).",
        "",
        "| facet | quota | kept |",
        "| --- | ---: | ---: |",
    ]
    for facet, quota in m["quotas"].items():
        lines.append(f"| {facet} | {quota} | {m['facet_counts'].get(facet, 0)} |")
    lines += ["", "| stage | rejected |", "| --- | ---: |"]
    for stage, count in m["funnel"]["rejected_by_stage"].items():
        lines.append(f"| {stage} | {count} |")
    bal = m["balance"]
    lines += [
        "",
        f"Matching answer at (A): {bal['matching_at_A']} of {m['counts']['items']}; "
        f"matching option is the longer one in {bal['share_matching_longer']} of items.",
        "",
        "## Known limits",
        "",
    ]
    if m.get("shortfall"):
        short = ", ".join(f"{k}: {v}" for k, v in m["shortfall"].items())
        lines.append(f"- **Short of the quota** within the attempt budget: {short}.")
    if models["generation"]["provider"] == "local":
        lines.append(
            "- Written by a 270M-parameter *base* model: expect awkward wording and some wrong labels; "
            "use it to try the pipeline, and a strong API model for data you will report."
        )
    if not bal.get("length_cue_within_target", True):
        lines.append(
            f"- The matching option is the longer one in {bal['share_matching_longer']} of items (target 0.5 ± 0.03): "
            "a model that picks the longer option scores above chance."
        )
    lines += [
        "- Labels are model-written and judged by a model; spot-check before publishing results.",
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
