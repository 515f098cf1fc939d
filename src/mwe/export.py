"""Exporters: a published dataset in the layouts other harnesses read, with no glue.

- `inspect`: JSONL that Inspect's `json_dataset` reads as it is (`input`, `choices`, `target` as a
  letter, `id`, `metadata`) and a `task.py` with one `@task` per file, so
  `inspect eval task.py --model …` runs at once. Option order is the published one.
- `anthropic-evals`: the layout of the anthropics/evals files (options inline in `question`,
  answers as `" (A)"`; persona files with `statement` and `" Yes"`), so their scripts work.
- `hf`: flat rows of fixed types for `datasets.load_dataset("json", data_files=…)`.
- `csv`: the same flat rows, one option per column, for people.

Which rows and files an item makes in the first two is its format's to say (`inspect_rows`,
`evals_row` on the format's class, found by `item.format`); flat rows are the item's own fields,
a format plugin's extra fields as extra columns.

Exports are written beside, never inside, the immutable version directory.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._inspect_task import task_source
from ._registry import Registry
from .errors import StoreError, UsageError
from .generators import format_of
from .generators.base import InspectFile
from .generators.open_ended import criterion
from .items import LETTERS, Item, inline_question

if TYPE_CHECKING:
    from .dataset import Dataset  # Dataset.export calls into this module: it stands above it

__all__ = ["EXPORTERS", "criterion", "default_out", "export", "exporter", "flat_row", "inline_question"]

Exporter = Callable[["Dataset", Path], list[Path]]
"""Writes a dataset into a folder (already created) and returns the files it wrote."""
EXPORTERS: Registry[Exporter] = Registry("export format", "mwe.exporters")


def exporter(name: str) -> Callable[[Exporter], Exporter]:
    """Register an exporter under the `--format` name users give `mwe export`."""
    return EXPORTERS.register(name)


def default_out(ds: Dataset, fmt: str) -> Path:
    """exports/<threat-model>-v<N>-<format>/ in the working directory."""
    return Path("exports") / f"{ds.manifest.threat_model}-v{ds.manifest.version}-{fmt}"


def export(ds: Dataset, fmt: str, out: str | Path | None = None) -> list[Path]:
    """Write `ds` in layout `fmt` to the folder `out` (created); return the files written."""
    write = EXPORTERS.resolve(fmt)
    folder = Path(out) if out is not None else default_out(ds, fmt)
    ds.check_outside(folder, "exports")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return write(ds, folder)
    except OSError as exc:
        raise StoreError.of(exc, "cannot write the export to", exc.filename or folder, "choose another --out") from None


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return path


def _metadata(item: Item) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "threat_model": item.threat_model,
        "format": item.format,
        "facet": item.facet,
        "answer_not_matching_behavior": item.answer_not_matching_behavior,
        "quality": item.scores.get("quality"),
        "label_confidence": item.scores.get("label_confidence"),
        "generator_model": item.lineage.get("model"),
    }
    if item.statement is not None:
        meta["statement"] = item.statement
    if item.rubric is not None:
        meta["rubric"] = item.rubric
    meta.update(item.model_extra or {})  # a format plugin's own item fields
    return meta


@exporter("inspect")
def _inspect(ds: Dataset, out: Path) -> list[Path]:
    files: dict[InspectFile, list[dict[str, Any]]] = {}
    for item in ds:
        for file, row in format_of(item).inspect_rows(item, _metadata(item)):
            files.setdefault(file, []).append(row)
    order = sorted(files, key=lambda f: (f.order, f.name))
    written = [_write_jsonl(out / f.name, files[f]) for f in order]
    task = out / "task.py"
    source = task_source(str(ds.manifest.threat_model), ds.manifest.version, [f.task for f in order])
    task.write_text(source, encoding="utf-8")
    return [*written, task]


@exporter("anthropic-evals")
def _anthropic_evals(ds: Dataset, out: Path) -> list[Path]:
    name = str(ds.manifest.threat_model)
    files: dict[str, list[dict[str, Any]]] = {}
    for item in ds:
        line = format_of(item).evals_row(item)
        if line is not None:
            files.setdefault(line[0], []).append(line[1])
    written = [_write_jsonl(out / f"{name}{suffix}.jsonl", files[suffix]) for suffix in sorted(files)]
    if not written:
        raise UsageError(f"{ds.path}: no items with answer options; the anthropics/evals layout has no open-ended form")
    return written


def flat_row(item: Item, width: int, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One item as columns of fixed type: strings ("" when absent), numbers or null, options as
    `choice_A`… up to `width`, nested records as JSON text; then the `extra` fields a format
    plugin adds to its items, as text (JSON unless a string), so a new format's fields reach
    the flat exports without an edit here."""
    rubric = item.rubric or {}
    row: dict[str, Any] = {
        "id": item.id,
        "threat_model": item.threat_model,
        "format": item.format,
        "facet": item.facet,
        "question": item.question,
        "statement": item.statement or "",
        "answer_matching_behavior": item.answer_matching_behavior or "",
        "rubric_matching": rubric.get("matching", ""),
        "rubric_not_matching": rubric.get("not_matching", ""),
        "quality": _number(item.scores.get("quality")),
        "label_confidence": _number(item.scores.get("label_confidence")),
        "conditions": json.dumps(item.conditions) if item.conditions else "",
        "scores": json.dumps(item.scores, ensure_ascii=False),
        "lineage": json.dumps(item.lineage, ensure_ascii=False),
    }
    for i in range(width):
        row[f"choice_{LETTERS[i]}"] = item.choices[i] if i < len(item.choices) else ""
    own = item.model_extra or {}
    for name in extra:
        value = own.get(name)
        row[name] = "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return row


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rows(ds: Dataset) -> list[dict[str, Any]]:
    width = max((len(i.choices) for i in ds), default=0)
    extra = list(dict.fromkeys(name for i in ds for name in i.model_extra or {}))
    return [flat_row(i, width, extra) for i in ds]


@exporter("hf")
def _hf(ds: Dataset, out: Path) -> list[Path]:
    rows = _rows(ds)
    data = _write_jsonl(out / "data.jsonl", rows)
    card = out / "README.md"
    card.write_text(
        (ds.path / "README.md").read_text(encoding="utf-8") + "\n## Loading\n\n```python\nimport datasets\n"
        'ds = datasets.load_dataset("json", data_files="data.jsonl", split="train")\n```\n\n'
        "Columns: " + ", ".join(f"`{k}`" for k in (rows[0] if rows else {})) + ". `scores`, `lineage` and "
        "`conditions` are JSON text; empty strings stand for fields an item's format does not have.\n",
        encoding="utf-8",
    )
    return [data, card]


@exporter("csv")
def _csv(ds: Dataset, out: Path) -> list[Path]:
    rows = _rows(ds)
    path = out / f"{ds.manifest.threat_model}-v{ds.manifest.version}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)
    return [path]
