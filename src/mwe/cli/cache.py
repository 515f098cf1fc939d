"""`mwe cache stats|clear`: the response cache, where answers already paid for are kept."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from ._console import out

cache_app = typer.Typer(help="Inspect or clear the response cache (answers already paid for).", no_args_is_help=True)


@cache_app.command("stats")
def cache_stats(as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False) -> None:
    """Where the cache is, how many answers it holds, its size and any unfinished batch jobs."""
    from ..cache import Cache

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
    from ..cache import Cache

    cache = Cache()
    try:
        if not yes and not typer.confirm(f"delete cached answers in {cache.path}?"):
            raise typer.Exit(1)
        removed = cache.clear(older_than_days * 86400 if older_than_days else None)
    finally:
        cache.close()
    out.print(f"removed {removed} cached answers from {cache.path}", highlight=False)
