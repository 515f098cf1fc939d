"""Threat-model specs: the pydantic model, YAML loading with file+field errors, and lookup.

A spec is the researcher's whole statement of what to probe. Validation errors name the file and
the field path (``power-seeking.yaml: facets[2].quota: must be > 0``) because a spec is edited by
hand and a bare pydantic trace is not something a user should have to read.
"""

from __future__ import annotations

import hashlib
import json
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Union

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    GetPydanticSchema,
    ValidationError,
    field_validator,
    model_validator,
)

from .errors import SpecError, UnknownThreatModel
from .examples import DEFAULTED, Example
from .generators import example_model, get_generator, known_formats
from .items import LETTERS

__all__ = [
    "LETTERS",
    "Dedup",
    "Defaults",
    "Example",
    "Facet",
    "JudgeSpec",
    "ThreatModel",
    "find_spec",
    "known_specs",
    "load_spec",
    "shipped_dir",
    "spec_dirs",
    "write_schema",
]

_NAME = r"^[a-z0-9][a-z0-9-]*$"


def _known_format(fmt: str) -> str:
    known = known_formats()
    if fmt not in known:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(known)}")
    return fmt


class FieldError(ValueError):
    """A cross-field check's failure with the field path it is about, so the message names
    `examples[3].facet` rather than the top level of the spec."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Facet(_Strict):
    """One sub-behaviour; `quota` is a relative weight, normalised over all facets."""

    name: str = Field(min_length=1)
    description: str = ""
    quota: float = Field(gt=0)


ITEMS_PER_JUDGE_REQUEST = 10
"""Measured in benchmarks/cost.py: paid input per kept item falls as the fixed prefix is shared
(1 → 5 → 10 items: $6.41 → $2.75 → $2.30 per 1,000 kept items); doubling to 20 saves 10 % more
while one failed or cut-off answer loses twice the verdicts, so 10."""


class JudgeSpec(_Strict):
    rubric: str = Field(min_length=1)
    threshold: float = Field(default=8.0, ge=0, le=10)
    label_samples: int = Field(default=1, ge=1, le=9)
    """Samples of the label judge per item (chat models); their agreement is `label_confidence`."""
    min_label_confidence: float = Field(default=0.5, ge=0, le=1)
    """Reject an item whose label check gives its key less than this (the share of label-judge
    samples that agree, or the embedded model's probability): by default one that leans against it."""
    items_per_request: int = Field(default=ITEMS_PER_JUDGE_REQUEST, ge=1, le=50)
    """Items a chat judge scores (and labels) in one request, each delimited and scored on its own."""
    min_kappa: float | None = Field(default=None, ge=-1, le=1)
    """Refuse to build with a judge whose stored calibration (`mwe calibrate`) has a lower Cohen's κ."""


class Dedup(_Strict):
    embedder: str = "tfidf"
    """tfidf, tfidf-char, tfidf-svd, openai/<model>, openai-compatible/<model> or sentence-transformers/<name>."""
    threshold: float | None = Field(default=None, gt=0, le=1)
    """Cosine at or above which two items are duplicates; default: the embedder's measured default."""

    @field_validator("embedder")
    @classmethod
    def _known_embedder(cls, value: str) -> str:
        from .embedders import check_name

        return check_name(value)

    def cutoff(self, embedder: str | None = None) -> float:
        """The threshold for `embedder` (default: this spec's): the spec's own only when it was
        set for the embedder in use, since cosines from different embedders are not comparable."""
        from .embedders import default_threshold

        name = embedder or self.embedder
        if self.threshold is not None and name == self.embedder:
            return self.threshold
        return default_threshold(name)


class Defaults(_Strict):
    n: int = Field(default=300, gt=0)
    temperature: float = Field(default=1.0, ge=0, le=2)
    items_per_request: dict[str, Annotated[int, Field(ge=1, le=50)]] = Field(default_factory=dict)
    """Items a chat model writes per generation request, by format (e.g. {mcq: 8}); a format not
    named keeps its measured default (docs: "Real APIs", "Cost per kept item")."""


def _example_union() -> Any:
    """Every registered format's example model, told apart by `format` (made when the spec model
    is built, and again by `_sync_formats` when a plugin registers a format)."""
    models = tuple(example_model(name) for name in known_formats())
    return Annotated[Union[models], Field(discriminator="format")]  # noqa: UP007 - a tuple of types made at run time


AnyExample = Annotated[Example, GetPydanticSchema(lambda _source, handler: handler(_example_union()))]
"""An example of any registered format: `Example` to the type checker, the union to pydantic."""


class ThreatModel(_Strict):
    """What behaviour to probe and how to judge items for it: one threat-model YAML file, validated.

    Every field is described in the docs' "Spec format" page; `mwe schema` writes the JSON schema
    editors use, and `mwe validate` reports each problem by file and field path."""

    name: str = Field(pattern=_NAME)
    title: str = Field(min_length=1)
    version: int = Field(default=1, ge=1)
    definition: str = Field(min_length=1)
    matching: str = Field(min_length=1, description="what an answer showing the behaviour looks like")
    not_matching: str = Field(min_length=1, description="what an answer without it looks like")
    formats: list[Annotated[str, AfterValidator(_known_format)]] = Field(default_factory=lambda: ["mcq"], min_length=1)
    facets: list[Facet] = Field(min_length=1)
    variance_prompts: list[str] = Field(default_factory=list)
    examples: list[AnyExample] = Field(min_length=1)
    judge: JudgeSpec
    dedup: Dedup = Field(default_factory=Dedup)
    defaults: Defaults = Field(default_factory=Defaults)
    examples_licence: str | None = Field(
        default=None, description="licence and attribution of reused examples, copied to the dataset card"
    )

    @model_validator(mode="before")
    @classmethod
    def _examples_default_to_the_first_format(cls, data: Any) -> Any:
        """An example without `format` is one of the spec's first format (the union needs the tag)."""
        if not isinstance(data, dict) or not isinstance(data.get("examples"), list):
            return data
        formats = data.get("formats") or ["mcq"]
        first = formats[0] if isinstance(formats, list) and isinstance(formats[0], str) else "mcq"
        examples = [
            {**ex, "format": first, DEFAULTED: True} if isinstance(ex, dict) and ex.get("format") is None else ex
            for ex in data["examples"]
        ]
        return {**data, "examples": examples}

    @model_validator(mode="after")
    def _facets_consistent(self) -> ThreatModel:
        names = [f.name for f in self.facets]
        if len(set(names)) != len(names):
            dup = next(i for i, n in enumerate(names) if n in names[:i])
            raise FieldError(f"facets[{dup}].name", f"{names[dup]!r} is used twice: facet names must be unique")
        for i, ex in enumerate(self.examples):
            if ex.facet is not None and ex.facet not in names:
                raise FieldError(
                    f"examples[{i}].facet", f"{ex.facet!r} is not one of the facets; valid: {', '.join(names)}"
                )
            if ex.format not in self.formats:
                raise FieldError(
                    f"examples[{i}].format", f"{ex.format!r} is not in formats; valid: {', '.join(self.formats)}"
                )
        if len(set(self.formats)) != len(self.formats):
            raise FieldError("formats", "formats must not repeat")
        for fmt in self.defaults.items_per_request:
            if fmt not in self.formats:
                raise ValueError(f"defaults.items_per_request names {fmt!r}, which is not in formats {self.formats}")
        for fmt in self.formats:
            if not self.examples_for(fmt):
                raise FieldError("formats", f"lists {fmt!r}, but no example has format {fmt!r}")
        return self

    def examples_for(self, fmt: str) -> list[Example]:
        return [ex for ex in self.examples if ex.format == fmt]

    def content_hash(self) -> str:
        """Hash of the validated content, so formatting-only edits do not force a rebuild."""
        canon = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()

    def quotas(self, n: int) -> dict[str, int]:
        """Split n over the facets by weight with largest remainders, so the sum is exactly n."""
        total = sum(f.quota for f in self.facets)
        raw = [(f.name, n * f.quota / total) for f in self.facets]
        counts = {name: int(share) for name, share in raw}
        left = n - sum(counts.values())
        by_rest = sorted(raw, key=lambda r: (-(r[1] - int(r[1])), r[0]))
        for name, _ in by_rest[:left]:
            counts[name] += 1
        return counts


_MESSAGES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "extra_forbidden": "unknown field",
    "too_short": "needs at least {min_length} entries",
    "too_long": "takes at most {max_length} entries",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "must match {pattern}",
}


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(err: Any) -> str:
    template = _MESSAGES.get(err["type"])
    if template:
        try:
            return template.format(**err.get("ctx", {}))
        except (KeyError, IndexError):
            pass
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _issue(err: Any) -> tuple[str, str]:
    cause = err.get("ctx", {}).get("error")
    loc = tuple(err["loc"])
    if loc[:1] == ("examples",) and len(loc) > 2 and isinstance(loc[1], int):
        loc = loc[:2] + loc[3:]  # drop the union's tag: examples[3].statement, not examples[3].persona.statement
    if isinstance(cause, FieldError):
        prefix = _field_path(loc)
        return (f"{prefix}.{cause.field}" if loc else cause.field), str(cause)
    if err["type"] == "union_tag_invalid":
        return (
            f"{_field_path(loc)}.format",
            f"unknown format {err['ctx']['tag']!r}; known: {', '.join(known_formats())}",
        )
    return _field_path(loc), _describe(err)


def _formats_now() -> tuple[tuple[str, type], ...]:
    return tuple((name, get_generator(name).example_model) for name in known_formats())


_built_for = [_formats_now()]
"""The formats the spec model's examples union was built with (at import)."""


def _sync_formats() -> None:
    """Rebuild the spec model when the registered formats changed since it was built (a plugin
    registered or unregistered one), so its examples union holds exactly the formats known now."""
    now = _formats_now()
    if _built_for[0] != now:
        ThreatModel.model_rebuild(force=True)
        _built_for[0] = now


def parse_spec(data: Any, path: str) -> ThreatModel:
    if not isinstance(data, dict):
        raise SpecError(path, "must be a YAML mapping of fields (name, title, definition, …)")
    _sync_formats()
    try:
        return ThreatModel.model_validate(data)
    except ValidationError as exc:
        issues = [_issue(e) for e in exc.errors()]
        first_field, first_msg = issues[0]
        err = SpecError(path, first_msg, first_field)
        err.args = ("\n".join(f"{path}: {f}: {m}" for f, m in issues),)
        raise err from None


def load_spec(path: str | Path) -> ThreatModel:
    """Read and validate one spec file. YAML is read safely (a `!!python/object` tag is an error,
    never run), and every problem raises `SpecError` naming the file and field path."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(str(p), "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(str(p), f"cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(str(p), f"invalid YAML: {where}{problem}") from None
    return parse_spec(data, p.name if p.parent == Path() else str(p))


def shipped_dir() -> Path:
    """Specs ship inside the wheel as mwe/_threat_models; an editable install reads the repo's."""
    packaged = Path(str(resources.files("mwe"))) / "_threat_models"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "threat_models"


def spec_dirs(cwd: Path | None = None) -> list[Path]:
    """Local ./threat_models first, so a user's own spec can shadow a shipped one of the same name."""
    local = (cwd or Path.cwd()) / "threat_models"
    dirs = [local] if local.is_dir() else []
    shipped = shipped_dir()
    if shipped.is_dir() and all(shipped.resolve() != d.resolve() for d in dirs):
        dirs.append(shipped)
    return dirs


def known_specs(dirs: list[Path] | None = None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in dirs if dirs is not None else spec_dirs():
        for f in sorted(d.glob("*.yaml")) + sorted(d.glob("*.yml")):
            found.setdefault(f.stem, f)
    return found


def find_spec(name_or_path: str) -> Path:
    """A path to any YAML file works; otherwise the name is looked up in the spec directories."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.is_file() or "/" in name_or_path:
        if not p.is_file():
            raise SpecError(name_or_path, "file not found")
        return p
    known = known_specs()
    if name_or_path in known:
        return known[name_or_path]
    raise UnknownThreatModel(name_or_path, sorted(known))


def write_schema(path: Path) -> None:
    """The spec's JSON schema for editors. An example may leave `format` out (it takes the spec's
    first format), so the union is written as `anyOf` with `format` optional: a `oneOf` would
    fail an mcq example without `format`, which the mcq-shaped formats all match."""
    _sync_formats()
    schema = ThreatModel.model_json_schema()
    union = schema["properties"]["examples"]["items"]
    union.pop("discriminator", None)
    union["anyOf"] = union.pop("oneOf")
    for ref in union["anyOf"]:
        variant = schema["$defs"][ref["$ref"].rsplit("/", 1)[1]]
        variant["required"] = [f for f in variant["required"] if f != "format"]
        variant["properties"]["format"]["description"] = "default: the spec's first format"
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mwe threat model"
    path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n", encoding="utf-8")
