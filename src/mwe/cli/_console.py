"""The two consoles every command prints to: results on stdout, errors and notes on stderr."""

from __future__ import annotations

from rich.console import Console

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)  # error text must not be broken across lines
