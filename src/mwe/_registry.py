"""One registry for everything mwe looks up by name: providers, formats, exporters, rules, embedders.

Built-ins register with a decorator when their module is imported, or as a lazy "module:attr"
reference that is imported on first use (so `import mwe` loads no SDK). Other packages add
plugins through entry points (`mwe.providers`, `mwe.formats`, `mwe.exporters`, `mwe.rules`,
`mwe.embedders`), loaded once on the first lookup, as simonw/llm and inspect_ai do:

    [project.entry-points."mwe.providers"]
    mine = "my_package.provider:MyProvider"   # an object: registered under the entry point's name
    more = "my_package.plugins"                # a module: it registers itself with the decorators

Iteration follows registration order (built-ins first), which is what the rules need.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any, Generic, TypeVar, overload

from .errors import UsageError

__all__ = ["ENTRY_POINT_GROUPS", "Registry", "name_class"]

T = TypeVar("T")
C = TypeVar("C", bound=type)

ENTRY_POINT_GROUPS = ("mwe.providers", "mwe.formats", "mwe.exporters", "mwe.rules", "mwe.embedders")


@functools.cache
def _installed() -> Any:
    """Every installed entry point, read once per process (one scan costs milliseconds; one per
    group would cost five times that). `EntryPoints` on Python 3.12, `SelectableGroups` on 3.11:
    both have `.select(group=…)`, hence Any."""
    from importlib.metadata import entry_points

    return entry_points()


def name_class(name: str, cls: C) -> C:
    """The `adopt` of a registry of classes (providers, formats): a class learns the name it is
    registered under, so `--model`/`format` names live in one place, the registration."""
    cls.name = name  # type: ignore[attr-defined]
    return cls


class Registry(Mapping[str, T], Generic[T]):
    """Names to objects of one kind. A read (`[]`, `in`, iteration, `names()`) first imports the
    built-in modules and the installed plugins; `resolve` is the lookup whose miss lists the names."""

    def __init__(
        self,
        kind: str,
        group: str,
        *,
        modules: tuple[str, ...] = (),
        lazy: Mapping[str, str] | None = None,
        adopt: Callable[[str, T], T] | None = None,
    ) -> None:
        self.kind = kind
        """What the names name, for messages ("provider", "export format")."""
        self.group = group
        """The entry-point group third-party packages register under."""
        self._modules = modules
        """Built-in modules that register their objects when imported."""
        self._items: dict[str, T | str] = dict(lazy or {})
        """A value that is still a str is a "module:attr" reference not imported yet."""
        self._loaded = False
        self._adopt = adopt
        """Called with (name, object) on registration: provider and format classes learn their name."""

    # --- registering ------------------------------------------------------------------------
    @overload
    def register(self, name: str) -> Callable[[T], T]: ...
    @overload
    def register(self, name: str, obj: T) -> T: ...
    def register(self, name: str, obj: T | None = None) -> T | Callable[[T], T]:
        """Add `obj` under `name` (a later registration of the same name replaces it); without
        `obj`, a decorator."""
        if obj is not None:
            return self._add(name, obj)

        def wrap(o: T) -> T:
            return self._add(name, o)

        return wrap

    def _add(self, name: str, obj: T) -> T:
        if self._adopt is not None:
            obj = self._adopt(name, obj)
        self._items[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove `name` (tests that register a toy plugin clean up with this)."""
        self._items.pop(name, None)

    # --- reading ----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._modules:
            importlib.import_module(module)
        for ep in _installed().select(group=self.group):
            try:
                obj = ep.load()
            except Exception as exc:
                dist = f" (package {ep.dist.name})" if ep.dist is not None else ""
                raise UsageError(
                    f"the {self.group} plugin {ep.name!r}{dist} failed to load: {type(exc).__name__}: {exc}; "
                    "fix or uninstall that package"
                ) from None
            if not isinstance(obj, ModuleType):
                self._add(ep.name, obj)

    def _resolved(self, name: str, value: T | str) -> T:
        if not isinstance(value, str):
            return value
        module, _, attr = value.partition(":")
        obj: T = getattr(importlib.import_module(module), attr)
        self._items[name] = obj
        return obj

    def __getitem__(self, name: str) -> T:
        self._load()
        return self._resolved(name, self._items[name])

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._items))

    def __len__(self) -> int:
        self._load()
        return len(self._items)

    def names(self) -> list[str]:
        """The registered names, sorted (for messages and listings); nothing lazy is imported."""
        self._load()
        return sorted(self._items)

    def resolve(self, name: str) -> T:
        """The object registered as `name`; a miss says which names are known."""
        if name not in self:
            raise UsageError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or '(none)'}")
        return self[name]
