"""The base of every format's few-shot example: what all examples share, and the checks that
name a missing or stray field in words a spec author can act on.

Each format declares its own example model (a subclass, e.g. `McqExample` beside the mcq
generator); the spec validates `examples` as a union of the registered formats' models keyed by
`format`, so a new format brings its example schema with it and nothing here changes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer, model_validator

from .items import compare_text

__all__ = ["DEFAULTED", "Example"]

DEFAULTED = "__format_from_spec__"
"""Set by the spec on an example it gave the spec's first format, so an error can say so."""

_V1_LAYOUT = (
    "format",
    "question",
    "choices",
    "answer_matching_behavior",
    "statement",
    "shows_behavior",
    "rubric",
    "facet",
    "source",
)
"""The keys, in order, of an example as dumped before formats owned their example models (one
model with every format's fields, unused ones null). Dumps keep that layout so a spec's content
hash, and the spec copied into every manifest, stay byte-identical for existing specs; fields of a
new format follow these."""


class Example(BaseModel):
    """A few-shot item in the layout of its format (default: the spec's first format); cite
    `source` when it is reused from a public set (CC-BY-4.0 asks so)."""

    model_config = ConfigDict(extra="forbid")

    format: str
    facet: str | None = None
    source: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _fields_of_the_format(cls, data: Any) -> Any:
        """Say which field an example of this format lacks or should not have, rather than
        pydantic's "missing"/"extra" pair. A null field counts as left out, as it always has."""
        if not isinstance(data, dict):
            return data
        defaulted = bool(data.get(DEFAULTED))
        data = {k: v for k, v in data.items() if v is not None and k != DEFAULTED}
        if cls is Example:
            return data
        fmt = data.get("format", "?")
        # an example of another format that lacks `format` reads as the first format's: say so
        hint = (
            f" (it has no `format`, so it is taken as the spec's first format, {fmt}: add `format:` if it is another)"
        )
        own = [n for n in cls.model_fields if n not in Example.model_fields]
        needs = [n for n in own if cls.model_fields[n].is_required()]
        stray = [k for k in data if k not in cls.model_fields]
        for name in needs:
            if name not in data:
                typo = f" (`{stray[0]}` is not one of its fields: a typo?)" if stray and not defaulted else ""
                raise ValueError(f"a {fmt} example needs `{name}`" + (hint if defaulted else typo))
        for name in data:
            if name not in cls.model_fields:
                raise ValueError(
                    f"`{name}` is not used by {fmt} examples (it needs {', '.join(needs)})"
                    + (hint if defaulted else "")
                )
        return data

    @model_serializer(mode="wrap")
    def _v1_layout(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        return {**{k: out.get(k) for k in _V1_LAYOUT}, **out}

    def view(self) -> tuple[str, list[str], str]:
        """The example as a question, options and the matching letter, whatever its format: the
        judges' few-shot blocks and cost estimates read every format through this one layout."""
        raise NotImplementedError(f"the {self.format} example model does not define view()")

    def anchor(self) -> tuple[str, str]:
        """What dedup compares generated items with (as `Item.text` would give for this example's
        item) and the text shown when one matches."""
        question, options, _ = self.view()
        return compare_text(question, options), question

    def texts(self) -> list[str]:
        """What contamination checks compare generated items with: the stem and every option."""
        question, options, _ = self.view()
        return [question, *options]
