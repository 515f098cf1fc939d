"""The resolved plan: every value a build derives from spec + options, computed once."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..filters.contamination import reference_file
from ..providers._registry import provider_class
from ..spec import ThreatModel
from .options import BuildOptions

__all__ = ["PRIOR_KEEP_RATE", "BuildPlan", "FormatPlan", "build_key", "split"]


PRIOR_KEEP_RATE = 0.75
"""Share of generated items the planner expects to keep before it has seen any (the estimator
too), unless the generating provider's class says what its model keeps (`Provider.keep_rate`)."""


def split(n: int, keys: list[str]) -> dict[str, int]:
    """n over keys in equal shares, earlier keys taking the remainder: the items per format."""
    return {k: n // len(keys) + (1 if i < n % len(keys) else 0) for i, k in enumerate(keys)}


@dataclass(frozen=True)
class FormatPlan:
    """One format's share of a build: items to keep, the quota per facet, generation requests allowed."""

    name: str
    n: int
    quotas: dict[str, int]
    budget: int


@dataclass(frozen=True)
class BuildPlan:
    """Every value a build derives from spec + options, resolved once: the loop, the estimator,
    the build key and the manifest read it here, so they cannot disagree."""

    spec: ThreatModel
    options: BuildOptions
    n: int
    formats: tuple[FormatPlan, ...]
    """The formats that get items (a format whose equal share of n is 0 is left out)."""
    temperature: float
    judge_threshold: float
    embedder: str
    dedup_cutoff: float
    keep_rate_prior: float = PRIOR_KEEP_RATE

    @classmethod
    def of(cls, spec: ThreatModel, opts: BuildOptions) -> BuildPlan:
        n = opts.n if opts.n is not None else spec.defaults.n
        if n < 1:
            raise UsageError(f"--n must be at least 1, got {n}")
        for fmt in opts.formats or []:
            if fmt not in spec.formats:
                raise UsageError(f"{spec.name} has no format {fmt!r}; its formats: {', '.join(spec.formats)}")
        names = opts.formats or spec.formats
        per_format = split(n, names)
        budgets = split(opts.max_attempts, names) if opts.max_attempts is not None else {}
        formats = tuple(
            FormatPlan(fmt, n_f, spec.quotas(n_f), budgets.get(fmt, max(20, 5 * n_f)))
            for fmt, n_f in per_format.items()
            if n_f > 0
        )
        model = provider_class(opts.model)
        prior = model.keep_rate if model is not None and model.keep_rate is not None else PRIOR_KEEP_RATE
        return cls(
            spec=spec,
            options=opts,
            n=n,
            formats=formats,
            temperature=opts.temperature if opts.temperature is not None else spec.defaults.temperature,
            judge_threshold=opts.judge_threshold if opts.judge_threshold is not None else spec.judge.threshold,
            embedder=opts.embedder or spec.dedup.embedder,
            dedup_cutoff=spec.dedup.cutoff(opts.embedder),
            keep_rate_prior=prior,
        )

    @property
    def max_attempts(self) -> int:
        return sum(f.budget for f in self.formats)

    def key(self) -> str:
        """What makes two builds the same: `mwe build` with no names skips a spec whose key is
        unchanged. It hashes the options as asked (not as resolved), so keys of earlier builds match."""
        opts = self.options
        parts = {
            "spec": self.spec.content_hash(),
            "model": opts.model,
            "judge_model": opts.judge_model or opts.model,
            "n": self.n,
            "seed": opts.seed,
            "temperature": opts.temperature,
            "judge_threshold": opts.judge_threshold,
            "formats": opts.formats,
            "second_judge_model": opts.second_judge_model,
            "against": [_file_hash(p) for p in opts.against or []],
            "version_guard": opts.version_guard,
            "embedder": opts.embedder,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


def build_key(spec: ThreatModel, opts: BuildOptions) -> str:
    """The key of `BuildPlan.of(spec, opts)` (see `BuildPlan.key`)."""
    return BuildPlan.of(spec, opts).key()


def _file_hash(path: str) -> str:
    file = reference_file(Path(path))
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else f"missing:{path}"
