"""`mwe build`: plan, build and publish each threat model's next version (or publish a review's).

The build and providers are imported inside the command, so `mwe --help` does not pay for them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import ShortfallError, UsageError
from ._console import out


def _specs_for_build(names: list[str]) -> list[tuple[str, Path, bool]]:
    """(name, path, named) for each spec; with no names, every spec in ./threat_models or the shipped ones."""
    from ..spec import find_spec, known_specs, shipped_dir

    if names:
        return [(n, find_spec(n), True) for n in names]
    local = Path("threat_models")
    dirs = [local] if local.is_dir() and known_specs([local]) else [shipped_dir()]
    return [(name, path, False) for name, path in sorted(known_specs(dirs).items())]


def build(
    threat_models: Annotated[list[str] | None, typer.Argument(help="names or YAML paths; none = every spec")] = None,
    n: Annotated[int | None, typer.Option("--n", help="items to keep (default: the spec's defaults.n)")] = None,
    model: Annotated[str, typer.Option(help="generation model: local, fake, provider/model")] = "local",
    judge_model: Annotated[str | None, typer.Option(help="judge model (default: --model)")] = None,
    second_judge_model: Annotated[
        str | None, typer.Option(help="a second model that labels every judged item; agreement is recorded")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="root of the published datasets")] = Path("generated"),
    seed: Annotated[int, typer.Option(help="run seed: same seed, spec and models give the same requests")] = 0,
    force: Annotated[bool, typer.Option(help="rebuild specs that are up to date")] = False,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature (default: the spec's)")] = None,
    judge_threshold: Annotated[float | None, typer.Option(help="keep items scoring at least this (0-10)")] = None,
    max_attempts: Annotated[int | None, typer.Option(help="generation requests allowed (default 5 per item)")] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="do not read or write the response cache")] = False,
    base_url: Annotated[
        str | None, typer.Option(help="server URL for openai-compatible/… (or MWE_BASE_URL), or a proxy for the others")
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option(help="name of the environment variable that holds the API key")
    ] = None,
    rpm: Annotated[
        float | None, typer.Option(help="requests per minute allowed (default: config, then the server's headers)")
    ] = None,
    itpm: Annotated[float | None, typer.Option(help="input tokens per minute allowed")] = None,
    otpm: Annotated[float | None, typer.Option(help="output tokens per minute allowed")] = None,
    concurrency: Annotated[
        int | None, typer.Option(help="most API requests in flight at once (default 8; fewer while latency grows)")
    ] = None,
    structured: Annotated[
        str | None,
        typer.Option(
            help="openai-compatible/…: hold answers to the schema by json_schema, tools or json (default: probed)"
        ),
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(help="USD: stop before a request could pass this; publishes nothing")
    ] = None,
    batch: Annotated[bool, typer.Option(help="use the Anthropic/OpenAI batch APIs (half price, slower)")] = False,
    formats: Annotated[
        list[str] | None, typer.Option("--format", help="build only this of the spec's formats (repeatable)")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print expected requests, tokens and cost; send nothing")
    ] = False,
    against: Annotated[
        list[Path] | None,
        typer.Option("--against", help="reject items that copy one in this JSONL file or version dir (repeatable)"),
    ] = None,
    version_guard: Annotated[
        bool, typer.Option(help="reject items that copy one in an earlier version of the same threat model")
    ] = False,
    embedder: Annotated[
        str | None,
        typer.Option(help="dedup embedder: tfidf, tfidf-char, tfidf-svd, openai/<model>, sentence-transformers/<name>"),
    ] = None,
    from_review: Annotated[
        Path | None,
        typer.Option(help="publish the reviewed version's next version with this review's decisions (no model calls)"),
    ] = None,
) -> None:
    """Build a new version of each threat model's dataset under --out."""
    if from_review is not None:
        _publish_review(from_review, threat_models or [])
        return
    from ..build import build as run_build
    from ..build import build_key, estimate, options_from, shortfall_message
    from ..progress import RichReporter
    from ..spec import load_spec
    from ..store import Store

    opts = options_from({**locals(), "use_cache": not no_cache})
    specs = [(name, path, named, load_spec(path)) for name, path, named in _specs_for_build(threat_models or [])]
    if dry_run:
        for _, _, _, spec in specs:
            _print_estimate(estimate(spec, opts))
        return
    store = Store(out_dir)
    store.check_writable()
    reporter = RichReporter()
    short: list[str] = []
    for _, path, named, spec in specs:
        # the newest version of each kind: a fake build never stands in for a real one, nor hides it
        key = build_key(spec, opts)
        same = [
            store.latest(spec.name, f)
            for f in (False, True)
            if (found := store.latest_manifest(spec.name, f)) is not None and found.build_key == key
        ]
        if not named and not force and same:
            out.print(f"{spec.name}: up to date ({same[0]}); --force rebuilds")
            continue
        started = time.monotonic()
        ds = run_build(spec, opts, store, spec_path=str(path), reporter=reporter)
        m = ds.manifest
        cost = m.cost
        asked = sum(int(u.get("requests", 0)) for u in m.usage.values())
        cached = sum(int(u.get("cache_hits", 0)) for u in m.usage.values())
        out.print(
            f"{spec.name}: kept {len(ds)}/{m.build.n} items, {m.counts.rejected} rejected, "
            f"→ {ds.path} ({time.monotonic() - started:.1f} s, ${cost.total_usd:.4f}"
            + (f", ${cost.saved_by_cache_usd:.4f} saved by the cache" if cost.saved_by_cache_usd else "")
            # a run answered from the cache is fast: say so, or its time reads as the model's speed
            + (f", {cached} of {asked} answers from the cache" if cached else "")
            + ")"
            + ("  [FAKE DATA]" if m.fake else ""),
            highlight=False,
        )
        if ds.shortfall:
            short.append(f"{spec.name}: {shortfall_message(m.generator.by_format)}")
    if short:
        raise ShortfallError("fell short of --n, published anyway (manifest 'shortfall'): " + " | ".join(short))


def _publish_review(review_file: Path, names: list[str]) -> None:
    from ..reviewed import publish_reviewed
    from ..reviews import reviewed_version
    from ..store import load

    version_dir, _ = reviewed_version(review_file)
    tm = load(version_dir).manifest.threat_model
    if names and names != [tm]:
        raise UsageError(f"{review_file} reviews {tm}, not {' '.join(names)}")
    ds = load(publish_reviewed(review_file))
    r = ds.manifest.review
    assert r is not None  # publish_reviewed always records the review
    d = r.decisions
    out.print(
        f"{tm}: v{r.from_version} reviewed by {r.reviewer} ({r.reviewed} decisions: accepted {d['accept']}, "
        f"relabelled {d['relabel']}, rejected {d['reject']}, ambiguous {d['ambiguous']}) → {ds.path}, {len(ds)} items"
        + ("  [FAKE DATA]" if ds.manifest.fake else ""),
        highlight=False,
    )


def _print_estimate(est: dict[str, object]) -> None:
    from rich.table import Table

    def usd(v: object) -> str:
        return f"${v:.4f}" if isinstance(v, (int, float)) else "unknown price"

    table = Table(title=f"{est['threat_model']}: dry run for n={est['n']}" + (" (batch)" if est["batch"] else ""))
    for col in ("stage", "model", "requests", "input tok", "output tok", "expected", "at most"):
        table.add_column(col, justify="left" if col in ("stage", "model") else "right", no_wrap=col == "stage")
    stages = est["stages"]
    assert isinstance(stages, dict)
    for stage, s in stages.items():
        table.add_row(
            stage,
            s["model"],
            str(s["requests"]),
            f"{s['input_tokens']:,}",
            f"{s['output_tokens']:,}",
            usd(s["cost_usd"]),
            f"{usd(s['max_cost_usd'])} ({s['max_requests']} req)",
        )
    out.print(table)
    out.print(
        f"expected {usd(est['total_cost_usd'])}, at most {usd(est['max_cost_usd'])}; no request was sent. "
        f"[dim]{escape(str(est['method']))}[/dim]"
    )
