"""What a build was asked for: BuildOptions, and the one constructor `mwe.generate()` and
`mwe build` share, so the two front ends cannot drift apart."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..embedders import check_name
from ..errors import UsageError
from ..providers import ProviderSettings

__all__ = ["BuildOptions", "build_options", "options_from"]


@dataclass
class BuildOptions:
    n: int | None = None
    model: str = "local"
    judge_model: str | None = None
    seed: int = 0
    temperature: float | None = None
    judge_threshold: float | None = None
    max_attempts: int | None = None
    """Generation requests allowed in all; default 5 per item asked (at least 20)."""
    use_cache: bool = True
    settings: ProviderSettings | None = None
    """Base URL, key variable, rate limits: applied to --model's provider; the judge gets the
    rate limits too, and the URL and key only when it is the same kind of provider."""
    max_cost: float | None = None
    """USD; the run stops before a request that could pass it, and publishes nothing."""
    batch: bool = False
    """Use the providers' batch APIs (half price, answers within 24 h)."""
    formats: list[str] | None = None
    """Build only these of the spec's formats (default: all of them, n split equally)."""
    second_judge_model: str | None = None
    """A second model that labels every judged item; its agreement with the key is recorded."""
    against: list[str] | None = None
    """Reference files or version directories new items must not copy (contamination guard)."""
    version_guard: bool = False
    """Earlier versions of the threat model in the output directory are references too (off by
    default: a rebuild with the same seed then replays its cached answers and gives the same items)."""
    embedder: str | None = None
    """Overrides the spec's `dedup.embedder` (its threshold then is the embedder's default)."""

    def __post_init__(self) -> None:
        if self.embedder is not None:
            try:
                check_name(self.embedder)
            except ValueError as exc:
                raise UsageError(f"--embedder: {exc}") from None


def build_options(
    *,
    n: int | None = None,
    model: str = "local",
    judge_model: str | None = None,
    second_judge_model: str | None = None,
    seed: int = 0,
    temperature: float | None = None,
    judge_threshold: float | None = None,
    max_attempts: int | None = None,
    max_cost: float | None = None,
    batch: bool = False,
    formats: list[str] | None = None,
    against: Sequence[str | Path] | None = None,
    version_guard: bool = False,
    embedder: str | None = None,
    base_url: str | None = None,
    api_key_env: str | None = None,
    rpm: float | None = None,
    itpm: float | None = None,
    otpm: float | None = None,
    concurrency: int | None = None,
    structured: str | None = None,
    use_cache: bool = True,
) -> BuildOptions:
    """The one place `mwe.generate()` and `mwe build` turn their flat options into BuildOptions,
    checked the same way for both (a test holds their parameters equal to these)."""
    from ..providers.openai import STRUCTURED_MODES

    if n is not None and n < 1:
        raise UsageError(f"--n must be at least 1, got {n}")
    if max_cost is not None and max_cost < 0:
        raise UsageError(f"--max-cost must be at least 0, got {max_cost}")
    if structured is not None and structured not in STRUCTURED_MODES:
        raise UsageError(f"--structured must be one of {', '.join(STRUCTURED_MODES)}, got {structured!r}")
    settings = ProviderSettings(
        base_url=base_url,
        api_key_env=api_key_env,
        rpm=rpm,
        itpm=itpm,
        otpm=otpm,
        concurrency=concurrency,
        structured=structured,
    )
    return BuildOptions(
        n=n,
        model=model,
        judge_model=judge_model,
        seed=seed,
        temperature=temperature,
        judge_threshold=judge_threshold,
        max_attempts=max_attempts,
        use_cache=use_cache,
        settings=settings,
        max_cost=max_cost,
        batch=batch,
        formats=formats or None,
        second_judge_model=second_judge_model,
        against=[str(p) for p in against] if against else None,
        version_guard=version_guard,
        embedder=embedder,
    )


def options_from(arguments: Mapping[str, Any]) -> BuildOptions:
    """`build_options` from a front end's own arguments (its `locals()`): the ones it shares with
    `build_options` are passed on, the rest (output folder, reporter, CLI-only flags) stay there.
    tests/test_build_plan.py holds each front end's parameters equal to `build_options`'s."""
    shared = inspect.signature(build_options).parameters
    return build_options(**{k: v for k, v in arguments.items() if k in shared})
