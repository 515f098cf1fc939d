"""Published datasets, read back: `mwe show`, `export`, `diff`, `report` and `audit`."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from ._console import err, out


def show(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    limit: Annotated[int, typer.Option(help="items to print")] = 3,
    as_json: Annotated[bool, typer.Option("--json", help="print the manifest as JSON")] = False,
) -> None:
    """Summarise a published dataset: counts, funnel, balance and a few items."""
    from ..store import load, newer_fake

    ds = load(path)
    m = ds.manifest
    if as_json:
        sys.stdout.write(json.dumps(m.to_json(), indent=2) + "\n")
        return
    out.print(f"[bold]{m.threat_model} v{m.version}[/bold]  {ds.path}" + ("  [red]FAKE DATA[/red]" if m.fake else ""))
    if (skipped := newer_fake(path)) is not None:
        out.print(f"[dim]newer FAKE version not shown (the folder stands for its newest real one): {skipped}[/dim]")
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


def export(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    fmt: Annotated[str, typer.Option("--format", help="inspect, anthropic-evals, hf or csv")] = "inspect",
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="folder to write (default exports/<name>-v<N>-<format>)")
    ] = None,
) -> None:
    """Write a published dataset in another harness's layout (Inspect AI first)."""
    from ..store import load

    written = load(path).export(fmt, out_dir)
    for p in written:
        out.print(str(p), highlight=False)
    if fmt == "inspect":
        task = next(p for p in written if p.name == "task.py")
        err.print(f"run it: inspect eval {task} --model <provider/model>", highlight=False)


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
    from ..diff import diff as compare
    from ..diff import render_text
    from ..store import load

    result = compare(load(old), load(new), threshold)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2) + "\n")
    else:
        sys.stdout.write(render_text(result) + "\n")


def report(
    path: Annotated[Path, typer.Argument(help="a version directory or generated/<threat-model>")],
    out_file: Annotated[
        Path | None, typer.Option("--out", help="HTML file to write (default reports/<name>-v<N>.html)")
    ] = None,
) -> None:
    """One self-contained HTML file to look at a dataset before trusting it: plots and a filterable table."""
    from ..report import write_report
    from ..store import load

    written = write_report(load(path), out_file)
    out.print(str(written), highlight=False)


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
    from .._audit_show import table, write_html
    from ..audit import AuditSettings
    from ..audit import audit as run_audit

    result = run_audit(list(paths), AuditSettings(embedder=embedder, threshold=threshold))
    if html is not None:
        err.print(f"wrote {write_html(result, html)}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        Console(width=max(out.width, 200)).print(table(result))  # a pipe's 80 columns would fold every row
