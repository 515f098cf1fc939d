"""The `mwe` command line: thin commands that parse options and call the library.

Every command is registered here, in the order `mwe --help` lists them; their bodies live in this
package's modules by subject (build, quality, specs, data, cache). Errors are MweError subclasses
mapped to exit codes in one place (`main`); see the docs' "Errors and exit codes" page. Heavy imports
(the build, providers) happen inside command bodies so `--help` is fast.
"""

from __future__ import annotations

import sys
import warnings

import typer
from rich.markup import escape

from ..errors import MweError, StoreError
from . import build, data, quality, specs
from ._console import err
from .cache import cache_app

__all__ = ["app", "main"]

app = typer.Typer(
    name="mwe",
    help="Write evaluation datasets with language models (model-written evals).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command()(build.build)
app.add_typer(cache_app, name="cache")
app.command()(quality.calibrate)
app.command()(quality.review)
app.command("eval")(quality.eval_cmd)
app.command("list")(specs.list_cmd)
app.command()(specs.validate)
app.command()(data.show)
app.command()(data.export)
app.command()(data.diff)
app.command()(data.report)
app.command()(data.audit)
app.command()(specs.new)
app.command()(specs.schema)

_python_showwarning = warnings.showwarning


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kw: object) -> None:
    """mwe's own warnings (FAKE data read) as one plain stderr line; others as Python prints them."""
    from ..store import FakeDataWarning

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
        usage, abort = _click_errors()
        if isinstance(exc, usage):
            exc.show()  # type: ignore[attr-defined]
            sys.exit(int(getattr(exc, "exit_code", 2)))
        if isinstance(exc, abort):
            err.print("aborted")
            sys.exit(130)
        raise


def _click_errors() -> tuple[tuple[type[BaseException], ...], tuple[type[BaseException], ...]]:
    """Usage-error and abort classes of click and of the copy of click that typer >= 0.29 ships
    (`typer._click`), whose exceptions are not click's: both must end in a message, not a traceback."""
    import click

    usage: list[type[BaseException]] = [click.exceptions.ClickException]
    abort: list[type[BaseException]] = [click.exceptions.Abort]
    try:
        from typer import exceptions as typer_exceptions
        from typer._click import exceptions as vendored  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        pass
    else:
        usage.append(vendored.ClickException)
        abort.append(typer_exceptions.Abort)
    return tuple(usage), tuple(abort)
