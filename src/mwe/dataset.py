"""The Dataset a build returns: a published version's items, where it lives and how it was made.

It stands above the exporters (`Dataset.export` writes through mwe.export), which name it only in
their annotations.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from .errors import UsageError
from .export import export
from .items import Item, Rejection
from .manifest import Manifest

__all__ = ["Dataset"]


class Dataset(Sequence[Item]):
    """A published version: a sequence of items plus where it lives and how it was made.

    Attributes:
        path: The version directory (`generated/<threat-model>/v<N>`), which is never modified.
        manifest: `manifest.json` of the version: how it was made, the funnel, usage and cost.
    """

    def __init__(self, items: list[Item], path: Path, manifest: Manifest | dict[str, Any]) -> None:
        self._items = items
        self.path = path
        self.manifest = manifest if isinstance(manifest, Manifest) else Manifest.model_validate(manifest)

    @overload
    def __getitem__(self, index: int) -> Item: ...
    @overload
    def __getitem__(self, index: slice) -> list[Item]: ...
    def __getitem__(self, index: int | slice) -> Item | list[Item]:
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"Dataset({self.manifest.threat_model!r}, {len(self)} items, path={str(self.path)!r})"

    @property
    def shortfall(self) -> dict[str, int]:
        """Items per facet that the build could not keep within its budget (empty when complete)."""
        return dict(self.manifest.shortfall)

    def check_outside(self, path: Path, what: str) -> None:
        """Published versions are immutable: nothing derived from one is written into it."""
        if path.resolve().is_relative_to(self.path.resolve()):
            raise UsageError(f"{path}: {what} go outside the published version directory {self.path}")

    def export(self, fmt: str, out: str | Path | None = None) -> list[Path]:
        """Write this version as `inspect`, `anthropic-evals`, `hf` or `csv` (see mwe.export);
        `out` defaults to exports/<threat-model>-v<N>-<format>/. Returns the files written."""
        return export(self, fmt, out)

    def to_inspect(self, out: str | Path | None = None) -> list[Path]:
        return self.export("inspect", out)

    def to_anthropic_evals(self, out: str | Path | None = None) -> list[Path]:
        return self.export("anthropic-evals", out)

    def to_hf(self, out: str | Path | None = None) -> list[Path]:
        return self.export("hf", out)

    def to_csv(self, out: str | Path | None = None) -> list[Path]:
        return self.export("csv", out)

    @property
    def rejected(self) -> list[Rejection]:
        path = self.path / "rejected.jsonl"
        with path.open(encoding="utf-8") as fh:
            return [Rejection.model_validate(json.loads(line)) for line in fh if line.strip()]
