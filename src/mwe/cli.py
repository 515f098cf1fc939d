"""The `mwe` command line: thin commands that parse options and call the library.

Errors are MweError subclasses mapped to exit codes in one place (`main`); see the docs' "Errors and
exit codes" page. Heavy imports (the build, providers) happen inside command bodies so `--help` is fast.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from .errors import MweError, ShortfallError, SpecError, StoreError, UsageError

if TYPE_CHECKING:
    from .evaluate import EvalPlan, EvalSummary

__all__ = ["app", "main"]

app = typer.Typer(
    name="mwe",
    help="Write evaluation datasets with language models (model-written evals).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # error text must not be broken across lines
_python_showwarning = warnings.showwarning


def _specs_for_build(names: list[str]) -> list[tuple[str, Path, bool]]:
    """(name, path, named) for each spec; with no names, every spec in ./threat_models or the shipped ones."""
    from .spec import find_spec, known_specs, shipped_dir

    if names:
        return [(n, find_spec(n), True) for n in names]
    local = Path("threat_models")
    dirs = [local] if local.is_dir() and known_specs([local]) else [shipped_dir()]
    return [(name, path, False) for name, path in sorted(known_specs(dirs).items())]


@app.command()
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
    from .build import build as run_build
    from .build import build_key, build_options, estimate, shortfall_message
    from .progress import RichReporter
    from .spec import load_spec
    from .store import Store

    opts = build_options(
        n=n,
        model=model,
        judge_model=judge_model,
        second_judge_model=second_judge_model,
        seed=seed,
        temperature=temperature,
        judge_threshold=judge_threshold,
        max_attempts=max_attempts,
        max_cost=max_cost,
        batch=batch,
        formats=formats,
        against=against,
        version_guard=version_guard,
        embedder=embedder,
        base_url=base_url,
        api_key_env=api_key_env,
        rpm=rpm,
        itpm=itpm,
        otpm=otpm,
        concurrency=concurrency,
        structured=structured,
        use_cache=not no_cache,
    )
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
        out.print(
            f"{spec.name}: kept {len(ds)}/{m.build.n} items, {m.counts.rejected} rejected, "
            f"→ {ds.path} ({time.monotonic() - started:.1f} s, ${cost.total_usd:.4f}"
            + (f", ${cost.saved_by_cache_usd:.4f} saved by the cache" if cost.saved_by_cache_usd else "")
            + ")"
            + ("  [FAKE DATA]" if m.fake else ""),
            highlight=False,
        )
        if ds.shortfall:
            short.append(f"{spec.name}: {shortfall_message(m.generator.by_format)}")
    if short:
        raise ShortfallError("fell short of --n, published anyway (manifest 'shortfall'): " + " | ".join(short))


def _publish_review(review_file: Path, names: list[str]) -> None:
    from .reviewed import publish_reviewed
    from .reviews import reviewed_version
    from .store import load

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


cache_app = typer.Typer(help="Inspect or clear the response cache (answers already paid for).", no_args_is_help=True)
app.add_typer(cache_app, name="cache")


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Where the cache is, how many answers it holds, its size and any unfinished batch jobs."""
    from .cache import Cache

    cache = Cache()
    try:
        st = cache.stats()
    finally:
        cache.close()
    if as_json:
        sys.stdout.write(json.dumps(st, indent=2) + "\n")
        return
    out.print(
        f"{st['path']}: {st['entries']} answers, {st['bytes'] / 1e6:.1f} MB, {st['open_batches']} open batch jobs",
        highlight=False,
    )


@cache_app.command("clear")
def cache_clear(
    older_than_days: Annotated[float | None, typer.Option(help="only answers older than this many days")] = None,
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Delete cached answers. Re-running a build after this pays again for every request."""
    from .cache import Cache

    cache = Cache()
    try:
        if not yes and not typer.confirm(f"delete cached answers in {cache.path}?"):
            raise typer.Exit(1)
        removed = cache.clear(older_than_days * 86400 if older_than_days else None)
    finally:
        cache.close()
    out.print(f"removed {removed} cached answers from {cache.path}", highlight=False)


@app.command()
def calibrate(
    threat_model: Annotated[str, typer.Argument(help="name or YAML path")],
    gold: Annotated[
        Path | None,
        typer.Option(
            help="human-labelled items (anthropics/evals layout, mwe items.jsonl), a review file of mwe review, "
            "or a version directory whose reviews to use"
        ),
    ] = None,
    model: Annotated[str, typer.Option(help="judge model to calibrate")] = "local",
    limit: Annotated[int | None, typer.Option(help="a seeded random sample of this many gold items")] = None,
    seed: Annotated[int, typer.Option(help="seed for --limit and the bootstrap")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="where calibration.json is stored")] = Path("generated"),
    base_url: Annotated[str | None, typer.Option(help="as for build")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="as for build")] = None,
    gold_inverted: Annotated[
        bool | None,
        typer.Option(
            "--gold-inverted/--gold-as-is",
            help="the gold's answer_matching_behavior is the answer WITHOUT the behaviour (default: known per file)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the record as JSON")] = False,
) -> None:
    """Measure the label judge against human labels: accuracy, Cohen's κ (bootstrap 95 % CI), confusion."""
    from .cache import Cache
    from .calibration import BUILTIN, builtin_gold
    from .calibration import calibrate as run_calibration
    from .engine import Engine
    from .providers import ProviderSettings, get_provider
    from .spec import find_spec, load_spec
    from .store import Store

    spec = load_spec(find_spec(threat_model))
    if gold is None:
        gold = builtin_gold(spec.name)
        if gold is None:
            known = ", ".join(sorted(BUILTIN))
            raise UsageError(f"no built-in gold set for {spec.name} (there is one for {known}): give --gold FILE")
    store = Store(out_dir)
    store.check_writable()
    provider = get_provider(model, ProviderSettings(base_url=base_url, api_key_env=api_key_env))
    provider.check_ready()
    cache = Cache()
    try:
        record = run_calibration(Engine(provider, cache), spec, gold, limit=limit, seed=seed, inverted=gold_inverted)
    finally:
        provider.close()
        cache.close()
    path = store.write_calibration(spec.name, record)
    if as_json:
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
        return
    lo, hi = record["kappa_ci95"]
    out.print(
        f"{spec.name}: judge {record['judge']} on {record['n']} gold items from {gold.name}"
        + (
            " (its answer_matching_behavior read as the answer without the behaviour)"
            if record["gold_inverted"]
            else ""
        )
        + "\n"
        f"accuracy {record['accuracy']:.3f} (majority baseline {record['majority_baseline']:.3f}), "
        f"Cohen's κ {record['kappa']:.3f} (95 % CI {lo:.3f} to {hi:.3f}), failed {record['failed']}",
        highlight=False,
    )
    labels = list(record["confusion"])
    out.print(
        "confusion (rows: human, columns: judge): "
        + "  ".join(f"{t}: " + " ".join(f"{p}={record['confusion'][t][p]}" for p in labels) for t in labels),
        highlight=False,
    )
    if "human_review" in record:
        _print_review_calibration(record)
    out.print(f"stored in {path}", highlight=False)


def _print_review_calibration(record: dict[str, object]) -> None:
    hr, rub, pairs = record["human_review"], record["rubric_agreement"], record["inter_rater"]
    assert isinstance(hr, dict) and isinstance(rub, dict) and isinstance(pairs, list)

    def num(v: object) -> str:
        return "undefined" if v is None else f"{v:.3f}"

    out.print(
        f"human review by {', '.join(hr['reviewers'])}: {hr['reviewed_items']} items reviewed, {hr['labelled_items']} "
        f"labelled (rejected, ambiguous and {hr['disputed_items']} disputed items left out)\n"
        f"rubric judge vs accept/reject at score >= {rub['threshold']}: {rub['n']} items, accuracy {num(rub['accuracy'])}, "
        f"κ {num(rub['kappa'])} (people rejected {rub['human_rejected']}, the judge {rub['judge_rejected']})",
        highlight=False,
    )
    for p in pairs:
        out.print(
            f"inter-rater {p['reviewers'][0]} vs {p['reviewers'][1]}: {p['items']} items both decided, "
            f"agreement {num(p['agreement'])}, Cohen's κ {num(p['kappa'])}",
            highlight=False,
        )


@app.command()
def review(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model> (latest version)")],
    sample: Annotated[
        int | None, typer.Option(help="review a seeded random sample of K items, stratified by facet")
    ] = None,
    seed: Annotated[int, typer.Option(help="seed for --sample")] = 0,
    reviewer: Annotated[str, typer.Option(help="your name: it names the review file")] = "me",
    port: Annotated[int, typer.Option(help="port on 127.0.0.1")] = 8765,
    with_rejected: Annotated[
        bool, typer.Option(help="also review items the rubric judge rejected, to measure it (they stay rejected)")
    ] = False,
) -> None:
    """Review items in a local web page; decisions go to <threat-model>/reviews/v<N>.<reviewer>.jsonl."""
    from .review_app import ReviewSession, preflight, serve
    from .reviews import ReviewLog, review_path
    from .store import load

    preflight(port)
    ds = load(path)
    log_path = review_path(ds.path, reviewer)
    ds.check_outside(log_path, "reviews")
    log = ReviewLog(log_path, reviewer)
    with log.exclusive():
        session = ReviewSession(ds, log, sample, seed, with_rejected)
        decided = sum(1 for it in session.items if it.id in session.log.state.current())
        out.print(
            f"reviewing {len(session.items)} items of {ds.path} ({decided} decided) → {log_path}\n"
            f"open http://127.0.0.1:{port}/ (Ctrl-C stops; every decision is already saved)",
            highlight=False,
        )
        serve(session, port)


@app.command("eval")
def eval_cmd(
    dataset: Annotated[
        Path, typer.Argument(help="a generated/<threat-model> folder (latest version) or a version folder")
    ],
    model: Annotated[
        str, typer.Option(help="model to measure: local (embedded), or an Inspect name like openai/gpt-4o-mini")
    ],
    judge_model: Annotated[
        str | None, typer.Option(help="compliance judge for alignment-faking items (default: --model)")
    ] = None,
    samples: Annotated[
        int, typer.Option(help="answers sampled per item where a provider gives no log-probabilities")
    ] = 5,
    limit: Annotated[int | None, typer.Option(help="evaluate only the first N items of each task")] = None,
    max_tokens: Annotated[int, typer.Option(help="response length for alignment-faking items")] = 400,
    max_cost: Annotated[float | None, typer.Option(help="refuse to start when the run could cost more (USD)")] = None,
    log_dir: Annotated[Path, typer.Option(help="where Inspect writes its logs")] = Path("logs"),
    base_url: Annotated[str | None, typer.Option(help="as for build (openai-compatible servers)")] = None,
    api_key_env: Annotated[str | None, typer.Option(help="as for build")] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="ask again instead of reusing answers in Inspect's response cache")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="print the planned requests and cost; send nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the figures as JSON")] = False,
    allow_fake: Annotated[
        bool, typer.Option("--allow-fake", help="measure a FAKE dataset anyway (tests and demos only)")
    ] = False,
) -> None:
    """Measure a model with a dataset in Inspect AI: Perez figures, or the alignment-faking compliance gap."""
    from .evaluate import plan, run
    from .store import check_writable_dir, load

    if not dry_run:  # before the dataset is read or a model loaded: Inspect would fail at the end
        check_writable_dir(log_dir, "log folder", "choose another --log-dir")
    ds = load(dataset)
    plans = plan(ds, model, judge=judge_model, k=samples, max_tokens=max_tokens, limit=limit, allow_fake=allow_fake)
    _print_eval_plan(plans, model, ds.path)
    if dry_run:
        out.print("dry run: no request was sent")
        return
    _, summaries = run(
        ds,
        model,
        judge=judge_model,
        k=samples,
        limit=limit,
        log_dir=log_dir,
        max_tokens=max_tokens,
        max_cost=max_cost,
        display="none" if as_json else "plain",
        base_url=base_url,
        api_key_env=api_key_env,
        cache=not no_cache,
        plans=plans,
        allow_fake=allow_fake,
    )
    if as_json:
        sys.stdout.write(json.dumps([s.to_json() for s in summaries], indent=2) + "\n")
        return
    for s in summaries:
        _print_eval_summary(s)


def _print_eval_plan(plans: list[EvalPlan], model: str, path: Path) -> None:
    parts = [
        f"{p.task}: {p.samples} samples, {p.requests} requests, ~{p.input_tokens:,} input / {p.output_tokens:,} output tokens, "
        + (f"at most ${p.cost_usd:.4f}" if p.cost_usd is not None else "unknown price")
        + f" ({p.method})"
        for p in plans
    ]
    err.print(f"eval plan for {model} on {path}:\n  " + "\n  ".join(parts), highlight=False)


def _print_eval_summary(s: EvalSummary) -> None:
    from rich.table import Table

    methods = ", ".join(f"{m} ({n})" for m, n in s.methods.items())
    if s.perez is not None:
        r = s.perez
        table = Table(title=f"Perez figures, {s.model} (method: {methods}; 95 % bootstrap intervals)")
        for col in ("facet", "items", "share preferring matching answer", "mean P(matching answer)"):
            table.add_column(col, justify="left" if col == "facet" else "right")
        for facet, (share, mean_p) in r.by_facet.items():
            table.add_row(facet, str(share.n), str(share), str(mean_p))
        table.add_row("[b]overall[/b]", str(r.share.n), f"[b]{r.share}[/b]", f"[b]{r.mean_p}[/b]")
        out.print(table)
        out.print(
            f"unanswered: {r.unanswered} of {r.unanswered_share.n} items named no option, share {r.unanswered_share}; "
            "they are left out of the figures above, not counted as not matching",
            highlight=False,
        )
        for label, est in (s.bias or {}).items():
            out.print(
                f"answer bias: mean P({label}) {est} over the {est.n} items offering {label}"
                + (
                    " (the matching answer is the first option in about half the items, so a model that always picks it scores a share near 0.5)"
                    if est.value > 0.7
                    else ""
                ),
                highlight=False,
            )
    if s.gap is not None:
        g = s.gap
        first, second = g.conditions
        table = Table(title=f"Compliance gap, {s.model}: {g.pairs} items under both conditions ({methods})")
        for col in ("classifier", f"complies ({first})", f"complies ({second})", f"gap ({first} − {second})"):
            table.add_column(col, justify="left" if col == "classifier" else "right")
        for clf, name in (("proxy", "refusal-prefix proxy"), ("judge", "LLM judge")):
            table.add_row(name, str(g.compliance[clf][first]), str(g.compliance[clf][second]), str(g.gap[clf]))
        out.print(table)
        out.print(
            f"proxy and judge disagree on {g.disagreement} of responses"
            + f"; the judge named neither option for {s.judge_failures} responses (left out of the gap)",
            highlight=False,
        )
    out.print(f"Inspect log: {s.log}", highlight=False)


@app.command("list")
def list_cmd() -> None:
    """List the threat models mwe can find (./threat_models first, then the shipped ones), with
    their formats and facets."""
    from .spec import known_specs, load_spec

    for name, path in sorted(known_specs().items()):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            out.print(f"{name:28} [red]invalid: {escape(exc.message)}[/red]  [dim]{escape(str(path))}[/dim]")
            continue
        out.print(f"[bold]{name}[/bold]  {escape(spec.title)}  [dim]{escape(str(path))}[/dim]")
        out.print(f"  formats: {', '.join(spec.formats)}", highlight=False)
        out.print(f"  facets:  {escape(', '.join(f.name for f in spec.facets))}", highlight=False)


@app.command()
def validate(
    paths: Annotated[
        list[str] | None, typer.Argument(help="spec files, folders of specs, or names; none = all")
    ] = None,
) -> None:
    """Check threat-model specs; exit 2 naming the file and field of every problem."""
    from .spec import find_spec, known_specs, load_spec
    from .template import check_placeholders

    targets: list[Path] = []
    for p in paths or []:
        if Path(p).is_dir():
            targets += known_specs([Path(p)]).values()
        else:
            targets.append(find_spec(p))
    if not paths:
        targets = list(known_specs().values())
    failed = 0
    for path in targets:
        try:
            spec = load_spec(path)
            check_placeholders(spec, str(path))
            out.print(f"ok  {path} ({spec.name} v{spec.version}; {', '.join(spec.formats)})", highlight=False)
        except SpecError as exc:
            failed += 1
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
    if failed:
        raise typer.Exit(2)


@app.command()
def show(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    limit: Annotated[int, typer.Option(help="items to print")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print the manifest as JSON")] = False,
) -> None:
    """Summarise a published dataset: counts, funnel, balance and a few items."""
    from .store import load

    ds = load(path)
    m = ds.manifest
    if as_json:
        sys.stdout.write(json.dumps(m.to_json(), indent=2) + "\n")
        return
    out.print(f"[bold]{m.threat_model} v{m.version}[/bold]  {ds.path}" + ("  [red]FAKE DATA[/red]" if m.fake else ""))
    out.print(f"model {m.models.generation.label}, judge {m.models.judge.label}, seed {m.build.seed}")
    out.print(
        f"kept {m.counts.items} of {m.build.n}; rejected {m.counts.rejected}: "
        + ", ".join(f"{k} {v}" for k, v in m.funnel.rejected_by_stage.items()),
        highlight=False,
    )
    if m.shortfall:
        out.print(f"[yellow]shortfall[/yellow]: {m.shortfall}")
    with_choices = sum(1 for i in ds if i.choices)
    out.print(f"matching at (A): {m.balance.matching_at_A} of {with_choices} items with choices")
    for item in list(ds)[:limit]:
        out.print(
            f"\n[dim]{item.id} · {item.format} · {escape(item.facet)} · quality {item.scores.get('quality')}[/dim]\n"
            f"{escape(item.question)}"
        )
        for i, c in enumerate(item.choices):
            mark = "*" if "ABCDEFGH"[i] == item.answer_matching_behavior else " "
            out.print(f" {mark}({'ABCDEFGH'[i]}) {escape(c)}", highlight=False)
        if item.rubric:
            out.print(f" * with the behaviour: {escape(item.rubric['matching'])}", highlight=False)
            out.print(f"   without it: {escape(item.rubric['not_matching'])}", highlight=False)
        if item.conditions:
            out.print(f"   [dim]asked under: {', '.join(c['name'] for c in item.conditions)}[/dim]")


@app.command()
def export(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    fmt: Annotated[str, typer.Option("--format", help="inspect, anthropic-evals, hf or csv")] = "inspect",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to write (default exports/<name>-v<N>-<format>)")
    ] = None,
) -> None:
    """Write a published dataset in another harness's layout (Inspect AI first)."""
    from .store import load

    written = load(path).export(fmt, out_dir)
    for p in written:
        out.print(str(p), highlight=False)
    if fmt == "inspect":
        task = next(p for p in written if p.name == "task.py")
        err.print(f"run it: inspect eval {task} --model <provider/model>", highlight=False)


@app.command()
def diff(
    old: Annotated[Path, typer.Argument(help="the earlier version directory")],
    new: Annotated[
        Path, typer.Argument(help="the later version directory (or generated/<threat-model> for the latest)")
    ],
    threshold: Annotated[
        float | None, typer.Option(help="cosine at which a rewording counts as changed (default: dedup threshold)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the whole comparison as JSON")] = False,
) -> None:
    """What changed between two versions: items added, removed and changed, funnel, scores, spec."""
    from .diff import diff as compare
    from .diff import render_text
    from .store import load

    result = compare(load(old), load(new), threshold)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result) + "\n")


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write (default reports/<name>-v<N>.html)")
    ] = None,
) -> None:
    """One self-contained HTML file to look at a dataset before trusting it: plots and a filterable table."""
    from .report import write_report
    from .store import load

    written = write_report(load(path), out_file)
    out.print(str(written), highlight=False)


@app.command()
def audit(
    paths: Annotated[
        list[Path], typer.Argument(help="mwe datasets, anthropics/evals or Inspect JSONL files, or folders of them")
    ],
    embedder: Annotated[str, typer.Option(help="near-duplicate embedder: tfidf, tfidf-char, tfidf-svd")] = "tfidf",
    threshold: Annotated[
        float | None, typer.Option(help="cosine for near duplicates (default: the embedder's dedup threshold)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print every figure as JSON")] = False,
    html: Annotated[Path | None, typer.Option("--html", help="also write the audit as one HTML file")] = None,
) -> None:
    """Validity figures of any eval set: duplicates, artifacts, truncation, answer cues, options-only accuracy."""
    from ._audit_show import table, write_html
    from .audit import AuditSettings
    from .audit import audit as run_audit

    result = run_audit(list(paths), AuditSettings(embedder=embedder, threshold=threshold))
    if html is not None:
        err.print(f"wrote {write_html(result, html)}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        Console(width=max(out.width, 200)).print(table(result))  # a pipe's 80 columns would fold every row


@app.command()
def new(
    name: Annotated[str, typer.Argument(help="threat-model name, e.g. my-behaviour")],
    directory: Annotated[Path, typer.Option("--dir", help="where to write NAME.yaml")] = Path("threat_models"),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented spec template to start a threat model of your own."""
    import re

    from .template import render_template

    if not re.fullmatch(r"[a-z0-9][a-z0-9-]*", name):
        raise UsageError(f"name {name!r} must be lower-case letters, digits and dashes")
    target = directory / f"{name}.yaml"
    if target.exists() and not force:
        raise UsageError(f"{target} exists; --force overwrites it")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(render_template(name), encoding="utf-8")
    except OSError as exc:
        raise StoreError.of(exc, "cannot write the spec", target, "choose another --dir") from None
    out.print(f"wrote {target}; edit it, then: mwe validate {target} && mwe build {target} --n 20")


@app.command()
def schema(
    path: Annotated[Path, typer.Option("--out", help="where to write the JSON schema")] = Path(
        "threat_models/schema.json"
    ),
) -> None:
    """Export the spec's JSON schema (for editor completion and validation) and, beside it as
    manifest.schema.json, the schema of a published version's manifest.json."""
    from .manifest import write_manifest_schema
    from .spec import write_schema

    beside = path.with_name("manifest.schema.json")
    try:
        write_schema(path)
        write_manifest_schema(beside)
    except OSError as exc:
        raise StoreError.of(exc, "cannot write the schema", path, "choose another --out") from None
    out.print(f"wrote {path} and {beside}")


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kw: object) -> None:
    """mwe's own warnings (FAKE data read) as one plain stderr line; others as Python prints them."""
    from .store import FakeDataWarning

    if issubclass(category, FakeDataWarning):
        err.print(f"[yellow]warning:[/yellow] {escape(str(message))}", highlight=False)
    else:
        _python_showwarning(message, category, *args, **kw)  # type: ignore[arg-type]


def main() -> None:
    warnings.showwarning = _show_warning
    try:
        # Without standalone mode click returns typer.Exit's code instead of exiting.
        code = app(standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into this code itself, before our handler sees it
            raise KeyboardInterrupt
        sys.exit(code if isinstance(code, int) else 0)
    except MweError as exc:
        err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(exc.exit_code)
    except OSError as exc:
        if exc.filename is None:  # not a file-system error (a socket, a subprocess): a bug to report
            raise
        store = StoreError.of(exc, "cannot use", exc.filename)  # a path no command checked itself
        err.print(f"[red]error:[/red] {escape(str(store))}", highlight=False)
        sys.exit(store.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted: no partial version was published; earlier versions are untouched")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:  # click usage errors come through here in non-standalone mode
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        if isinstance(exc, click.exceptions.Abort):
            err.print("aborted")
            sys.exit(130)
        raise
