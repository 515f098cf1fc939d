"""The manifest of a published version (`manifest.json`), typed.

The build writes it and every reader (card, CLI, diff, report, export, eval, store) reads these
fields instead of string keys on a dict. Reading is tolerant, so versions written by older mwe
still load: every field has a default, and fields this version does not know are kept as they
are (written back unchanged when a reviewed version copies its base). `schema_version` says which
shape a file was written in; files from before it existed read as 0.

Dict-style reading (`ds.manifest["funnel"]["kept"]`) still works and returns the JSON form, for
code written when the manifest was a plain dict.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["SCHEMA_VERSION", "STAGES", "Manifest", "write_manifest_schema"]

SCHEMA_VERSION = 1
"""1: the first typed manifest (adds `schema_version`; every other field as written since 0.1.0)."""

STAGES = ("parse", "rules", "label", "judge", "judge_error", "dedup", "balance", "quota")
"""The stages a candidate can be rejected at, in the order of the build: the funnel's rows."""

Num = int | float
"""A number kept as written: a threshold of 5 stays 5, not 5.0, in cards and JSON."""


class _Part(BaseModel):
    """A section of the manifest: unknown fields are kept, missing ones take their defaults."""

    model_config = ConfigDict(extra="allow")


class BuildSettings(_Part):
    n: int | None = None
    seed: int = 0
    temperature: Num | None = None
    max_attempts: int | None = None
    cache: bool = True
    batch: bool = False
    max_cost_usd: Num | None = None


class ModelInfo(_Part):
    """A provider's own description (`Provider.describe()`) plus the label users type."""

    provider: str = ""
    model: str = ""
    label: str = ""


class Models(_Part):
    generation: ModelInfo = Field(default_factory=ModelInfo)
    judge: ModelInfo = Field(default_factory=ModelInfo)


class Balance(_Part):
    matching_at_A: int = 0
    share_matching_at_A: Num | None = None
    matching_longer: int = 0
    share_matching_longer: Num | None = None
    length_cue_within_target: bool = True


class FormatRow(_Part):
    """One format's share of the build: what it was asked, spent and kept."""

    n: int = 0
    layout: str = ""
    quotas: dict[str, int] = Field(default_factory=dict)
    kept: int = 0
    shortfall: dict[str, int] = Field(default_factory=dict)
    generation_requests: int = 0
    max_attempts: int = 0
    rejected_by_stage: dict[str, int] = Field(default_factory=dict)
    length_cue_topup_rounds: int = 0
    balance: Balance = Field(default_factory=Balance)


class Generator(_Part):
    formats: list[str] = Field(default_factory=list)
    by_format: dict[str, FormatRow] = Field(default_factory=dict)


class SecondJudge(_Part):
    model: str = ""
    items: int = 0
    answered: int = 0
    agree: int = 0
    share_agree: Num | None = None
    kappa: Num | None = None
    note: str = ""


class Judge(_Part):
    method: str = ""
    threshold: Num | None = None
    min_label_confidence: Num | None = None
    second: SecondJudge | None = None


class Rules(_Part):
    checks: list[str] = Field(default_factory=list)
    leak_min_words: int | None = None
    leak_min_words_example: int | None = None


class Dedup(_Part):
    embedder: str = ""
    threshold: Num | None = None
    against: list[dict[str, Any]] = Field(default_factory=list)
    """The contamination references: path, items and SHA-256 of each."""


class Counts(_Part):
    items: int = 0
    rejected: int = 0


class Funnel(_Part):
    generation_requests: int = 0
    generated: int = 0
    rejected_by_stage: dict[str, int] = Field(default_factory=dict)
    kept: int = 0
    rounds: int = 0


class Cost(_Part):
    total_usd: Num = 0
    saved_by_cache_usd: Num = 0
    by_stage_usd: dict[str, Num] = Field(default_factory=dict)
    prices: dict[str, dict[str, Any] | None] = Field(default_factory=dict)
    currency: str = "USD"


class Review(_Part):
    """Present on a version published from a person's review (`mwe build --from-review`)."""

    from_version: int = 0
    file: str = ""
    file_sha256: str = ""
    reviewer: str = ""
    items_in_version: int = 0
    sample: int | None = None
    seed: int | None = None
    under_review: int = 0
    judge_rejected_reviewed: int = 0
    reviewed: int = 0
    decisions: dict[str, int] = Field(default_factory=dict)
    label_error: dict[str, Any] = Field(default_factory=dict)
    not_publishable: dict[str, Any] = Field(default_factory=dict)
    note: str = ""


class Manifest(_Part):
    """How a version was made and what happened to every candidate. Field order is the file's."""

    schema_version: int = 0
    mwe_version: str = ""
    threat_model: str
    version: int
    created_at: str = ""
    fake: bool = False
    build_key: str | None = None
    build: BuildSettings = Field(default_factory=BuildSettings)
    models: Models = Field(default_factory=Models)
    generator: Generator = Field(default_factory=Generator)
    judge: Judge = Field(default_factory=Judge)
    rules: Rules = Field(default_factory=Rules)
    dedup: Dedup = Field(default_factory=Dedup)
    diversity: dict[str, Any] | None = None
    spec_path: str | None = None
    spec_hash: str = ""
    prompts_hash: dict[str, str] = Field(default_factory=dict)
    spec: dict[str, Any] = Field(default_factory=dict)
    """The spec as built, kept as written: a spec field later renamed must not stop a version loading."""
    counts: Counts = Field(default_factory=Counts)
    quotas: dict[str, int] = Field(default_factory=dict)
    facet_counts: dict[str, int] = Field(default_factory=dict)
    shortfall: dict[str, int] = Field(default_factory=dict)
    funnel: Funnel = Field(default_factory=Funnel)
    funnel_by_facet: dict[str, dict[str, int]] = Field(default_factory=dict)
    balance: Balance = Field(default_factory=Balance)
    usage: dict[str, dict[str, Any]] = Field(default_factory=dict)
    cost: Cost = Field(default_factory=Cost)
    timings_s: dict[str, Num] = Field(default_factory=dict)
    review: Review | None = None

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """A manifest.json; a file that is not one fails with a StoreError naming it and the field."""
        from .errors import StoreError

        try:
            return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            if isinstance(exc, ValidationError):
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"]) or "(top level)"
                raise StoreError(f"cannot read {path}: field {where}: {err['msg']}") from None
            raise StoreError(f"cannot read {path}: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        """The JSON form: what was set, in the file's order, with unknown fields kept (so an old
        manifest reads back as it was written)."""
        return self.model_dump(mode="json", exclude_unset=True)

    def __getitem__(self, key: str) -> Any:
        return self.to_json()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.to_json().get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self.to_json()


def write_manifest_schema(path: Path) -> None:
    """The manifest's JSON schema, for tools that read published versions."""
    schema = Manifest.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mwe manifest"
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
