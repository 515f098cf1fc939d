"""Threat-model specs: `mwe list`, `mwe validate`, `mwe new` (a template) and `mwe schema`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ..errors import SpecError, StoreError, UsageError
from ._console import err, out


def list_cmd() -> None:
    """List the threat models mwe can find (./threat_models first, then the shipped ones), with
    their formats and facets."""
    from ..spec import known_specs, load_spec

    for name, path in sorted(known_specs().items()):
        try:
            spec = load_spec(path)
        except SpecError as exc:
            out.print(f"{name:28} [red]invalid: {escape(exc.message)}[/red]  [dim]{escape(str(path))}[/dim]")
            continue
        out.print(f"[bold]{name}[/bold]  {escape(spec.title)}  [dim]{escape(str(path))}[/dim]")
        out.print(f"  formats: {', '.join(spec.formats)}", highlight=False)
        out.print(f"  facets:  {escape(', '.join(f.name for f in spec.facets))}", highlight=False)


def validate(
    paths: Annotated[
        list[str] | None, typer.Argument(help="spec files, folders of specs, or names; none = all")
    ] = None,
) -> None:
    """Check threat-model specs; exit 2 naming the file and field of every problem."""
    from ..spec import find_spec, known_specs, load_spec
    from ..template import check_placeholders

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


def new(
    name: Annotated[str, typer.Argument(help="threat-model name, e.g. my-behaviour")],
    directory: Annotated[Path, typer.Option("--dir", help="where to write NAME.yaml")] = Path("threat_models"),
    force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False,
) -> None:
    """Write a commented spec template to start a threat model of your own."""
    import re

    from ..template import render_template

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


def schema(
    path: Annotated[Path, typer.Option("--out", help="where to write the JSON schema")] = Path(
        "threat_models/schema.json"
    ),
) -> None:
    """Export the spec's JSON schema (for editor completion and validation) and, beside it as
    manifest.schema.json, the schema of a published version's manifest.json."""
    from ..manifest import write_manifest_schema
    from ..spec import write_schema

    beside = path.with_name("manifest.schema.json")
    try:
        write_schema(path)
        write_manifest_schema(beside)
    except OSError as exc:
        raise StoreError.of(exc, "cannot write the schema", path, "choose another --out") from None
    out.print(f"wrote {path} and {beside}")
