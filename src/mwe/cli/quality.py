"""How good the labels and the models are: `mwe calibrate` (judge vs people), `mwe review` (people
label in a local page) and `mwe eval` (a model measured in Inspect AI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..errors import UsageError
from ._console import err, out

if TYPE_CHECKING:
    from ..evaluate import EvalPlan, EvalSummary


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
    from ..cache import Cache
    from ..calibration import BUILTIN, builtin_gold
    from ..calibration import calibrate as run_calibration
    from ..engine import Engine
    from ..providers import ProviderSettings, get_provider
    from ..spec import find_spec, load_spec
    from ..store import Store

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
    from ..review_app import ReviewSession, preflight, serve
    from ..reviews import ReviewLog, review_path
    from ..store import load

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
    from ..evaluate import plan, run
    from ..store import check_writable_dir, load

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
