"""The Python entry point: `mwe.generate(...)` as a thin front over the build."""

from __future__ import annotations

from pathlib import Path

from .build import build, options_from
from .dataset import Dataset
from .progress import QuietReporter, Reporter, RichReporter
from .spec import ThreatModel, find_spec, load_spec
from .store import Store

__all__ = ["generate"]


def generate(
    threat_model: str | Path | ThreatModel,
    *,
    n: int | None = None,
    model: str = "local",
    judge_model: str | None = None,
    out: str | Path = "generated",
    seed: int = 0,
    temperature: float | None = None,
    judge_threshold: float | None = None,
    max_attempts: int | None = None,
    max_cost: float | None = None,
    batch: bool = False,
    formats: list[str] | None = None,
    second_judge_model: str | None = None,
    against: list[str] | None = None,
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
    progress: bool = False,
    reporter: Reporter | None = None,
) -> Dataset:
    """Build and publish a new version of a threat model's dataset and return it.

    `threat_model` is a shipped name ("power-seeking"), a path to a YAML spec, or a ThreatModel.
    The default model is the embedded one, so nothing is spent unless another model is named.
    If fewer than `n` items could be kept, the dataset is still published and `Dataset.shortfall`
    says by how many per facet (a warning is printed too). The other options are the CLI's
    (`mwe build --help`): API models read their key from the environment only.
    """
    if isinstance(threat_model, ThreatModel):
        spec, spec_path = threat_model, None
    else:
        path = find_spec(str(threat_model))
        spec, spec_path = load_spec(path), str(path)
    opts = options_from(locals())  # every option but the spec, --out and the reporter
    rep = reporter or (RichReporter() if progress else QuietReporter())
    return build(spec, opts, Store(out), spec_path=spec_path, reporter=rep)
