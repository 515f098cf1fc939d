"""Per-model settings from a TOML file: rate limits, concurrency, timeouts and prices.

The file is the first of `$MWE_CONFIG`, `./mwe.toml`, `~/.config/mwe/config.toml` that exists.
Sections are model names, and a `*` pattern matches many (first match in file order wins, exact
names before patterns):

    [models."anthropic/claude-sonnet-4-5"]
    rpm = 50            # requests per minute
    itpm = 30000        # input tokens per minute
    otpm = 8000         # output tokens per minute
    concurrency = 8     # requests in flight
    input_price = 3.0   # USD per million input tokens (overrides the built-in table)
    output_price = 15.0 # USD per million output tokens

Command-line options (--rpm, …) win over the file, and the file wins over built-in defaults.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import UsageError

__all__ = ["config_path", "load_config", "model_config"]

_KNOWN = {
    "rpm",
    "itpm",
    "otpm",
    "concurrency",
    "timeout",
    "input_price",
    "output_price",
    "cache_write",
    "cache_read",
    "batch_discount",
}


def config_path() -> Path | None:
    for candidate in (
        os.environ.get("MWE_CONFIG"),
        "mwe.toml",
        os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "mwe", "config.toml"),
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


@lru_cache(maxsize=8)
def _load(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the config file: {exc}") from None
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise UsageError(f"{path}: models: must be a table of model names")
    for name, section in models.items():
        if not isinstance(section, dict):
            raise UsageError(f"{path}: models.{name}: must be a table")
        for key, value in section.items():
            if key not in _KNOWN:
                raise UsageError(f"{path}: models.{name}.{key}: unknown setting; known: {', '.join(sorted(_KNOWN))}")
            if not isinstance(value, (int, float)) or value < 0:
                raise UsageError(f"{path}: models.{name}.{key}: must be a non-negative number")
    return models


def load_config() -> dict[str, dict[str, Any]]:
    path = config_path()
    return _load(str(path), path.stat().st_mtime) if path else {}


def model_config(model: str) -> dict[str, Any]:
    models = load_config()
    if model in models:
        return dict(models[model])
    for pattern, section in models.items():
        if fnmatch.fnmatchcase(model, pattern):
            return dict(section)
    return {}
