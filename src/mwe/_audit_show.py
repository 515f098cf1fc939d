"""`mwe audit` for people: a rich table, and one self-contained HTML file in the report's look."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["COLUMNS", "cells", "labels", "render_html", "table", "write_html"]

COLUMNS = (
    "file",
    "layout",
    "items",
    "exact dup",
    "near dup",
    "artifacts",
    "truncated",
    "key at A",
    "key is Yes",
    "key longest",
    "options-only acc (chance)",
)


def _pct(share: float | None) -> str:
    return "n/a" if share is None else f"{share:.1%}"


def _count(fig: dict[str, Any], wide: bool) -> str:
    return f"{fig['count']} ({_pct(fig['share'])})" if wide else _pct(fig["share"])


def _classifier(fig: dict[str, Any], wide: bool) -> str:
    if fig.get("accuracy") is None:  # say why: "n/a" alone reads as a failure of the audit
        if not fig.get("note"):
            return "n/a"
        return f"n/a ({fig['note']})" if wide else "n/a (too few)"
    lo, hi = fig["ci95"]
    ci = f" [{lo:.1%}, {hi:.1%}]" if wide else ""
    return f"{fig['accuracy']:.1%}{ci} ({fig['chance']:.0%})"


def labels(report: dict[str, Any]) -> dict[str, str]:
    """Short names for the files: the file name, or folder/name where names repeat (two
    power-seeking-inclination.jsonl) or say little (a version folder v3)."""
    paths = [Path(r["name"]) for r in report["files"]]
    names = [p.name.removesuffix(".jsonl") for p in paths]
    return {
        str(p): f"{p.parent.name}/{n}" if names.count(n) > 1 or (p.name.startswith("v") and not p.suffix) else n
        for p, n in zip(paths, names, strict=True)
    } | {"overall": "overall"}


def cells(row: dict[str, Any], label: str, wide: bool = False) -> list[str]:
    """One file's (or the overall) figures as the table's cells."""
    pos = row["position"]
    return [
        label,
        row["layout"],
        str(row["items"]),
        _count(row["exact_duplicates"], wide),
        _count(row["near_duplicates"], wide),
        _count(row["artifacts"], wide),
        _count(row["truncated"], wide),
        _pct(pos["share_first"]),
        _pct(pos["share_yes"]),
        _pct(row["matching_longer"]["share"]),
        _classifier(row["options_only"], wide),
    ]


def _caption(report: dict[str, Any]) -> str:
    return (
        f"near duplicates: {report['embedder']} cosine ≥ {report['threshold']} (mwe's dedup embedder), beyond exact "
        f"ones; options-only: {report['classifier']}, accuracy (chance); counts and intervals: --json, --html"
    )


def table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    t = Table(title="mwe audit", caption=_caption(report), caption_justify="left")
    for col in COLUMNS:
        t.add_column(
            col, justify="left" if col in ("file", "layout") else "right", overflow="fold", no_wrap=col != "file"
        )
    names = labels(report)
    for row in report["files"]:
        t.add_row(*cells(row, names[row["name"]]))
    if len(report["files"]) > 1:
        t.add_row(*(f"[b]{c}[/b]" for c in cells(report["overall"], "overall")))
    return t


def render_html(report: dict[str, Any]) -> str:
    """The audit as one HTML page: the table, a plot of the shares per file, what each figure means."""
    from .report import _STYLE, _e, hbars

    rows = [*report["files"], *([report["overall"]] if len(report["files"]) > 1 else [])]
    names = labels(report)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in cells(r, names[r["name"]], wide=True)) + "</tr>" for r in rows
    )
    plot = hbars(
        [
            (
                names[r["name"]],
                [
                    100 * (r[k]["share"] or 0.0)
                    for k in ("exact_duplicates", "near_duplicates", "artifacts", "truncated")
                ],
            )
            for r in rows
        ],
        ["exact duplicates", "near duplicates", "artifacts", "truncated"],
        "Items with each defect (%)",
    )
    cues = hbars(
        [
            (
                names[r["name"]],
                [
                    r["position"]["share_first"] or 0.0,
                    r["matching_longer"]["share"] or 0.0,
                    r["options_only"].get("accuracy") or 0.0,
                ],
            )
            for r in rows
        ],
        ["key at A", "key is the longest option", "options-only accuracy"],
        "Answer cues (0.5 = none for A/B items)",
        ref=0.5,
    )
    head = "".join(f"<th>{_e(c)}</th>" for c in COLUMNS)
    fake = (
        '<p class="fake"><b>FAKE DATA</b>: at least one set was made by the fake provider for tests and demos.</p>'
        if any("FAKE" in r["layout"] for r in report["files"])
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mwe audit</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_STYLE}</style></head>
<body>
<h1>mwe audit</h1>{fake}
<p>{_e(_caption(report))}.</p>
<div class="plots"><figure>{plot}</figure><figure>{cues}</figure></div>
<h2>Figures</h2>
<table id="audit"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
</body></html>
"""


def write_html(report: dict[str, Any], path: Path) -> Path:
    from .errors import StoreError, UsageError

    inside = next((d for d in path.resolve().parents if (d / "manifest.json").is_file()), None)
    if inside is not None:  # published versions never change
        raise UsageError(f"{path}: the audit goes outside the published version directory {inside}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(render_html(report), encoding="utf-8")
    except OSError as exc:
        raise StoreError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
