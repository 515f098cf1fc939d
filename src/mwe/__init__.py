"""mwe: model-written evaluation datasets, from a threat-model spec to a versioned JSONL dataset.

```python
import mwe
ds = mwe.generate("power-seeking", n=20)          # embedded model, offline
ds = mwe.load("generated/power-seeking")          # newest real (not FAKE) version
```

`import mwe` loads none of the modules behind these names: each is imported on first use
(PEP 562), so the command line's `--help` and a script that only reads a dataset stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from ._api import generate
    from .dataset import Dataset
    from .errors import (
        AuthError,
        CostLimitReached,
        JudgeNotCalibrated,
        MissingDependency,
        MweError,
        ProviderError,
        ShortfallError,
        SpecError,
        StoreError,
        UnknownThreatModel,
        UsageError,
    )
    from .items import Item, Rejection
    from .spec import ThreatModel, load_spec
    from .store import FakeDataWarning, load

_ERRORS = (
    "AuthError",
    "CostLimitReached",
    "JudgeNotCalibrated",
    "MissingDependency",
    "MweError",
    "ProviderError",
    "ShortfallError",
    "SpecError",
    "StoreError",
    "UnknownThreatModel",
    "UsageError",
)
_HOME = {
    **dict.fromkeys(_ERRORS, "errors"),
    "Dataset": "dataset",
    "FakeDataWarning": "store",
    "Item": "items",
    "Rejection": "items",
    "ThreatModel": "spec",
    "generate": "_api",
    "load": "store",
    "load_spec": "spec",
}
"""Each public name and the module that defines it (the TYPE_CHECKING imports above, for readers and mypy)."""

__all__ = [
    "AuthError",
    "CostLimitReached",
    "Dataset",
    "FakeDataWarning",
    "Item",
    "JudgeNotCalibrated",
    "MissingDependency",
    "MweError",
    "ProviderError",
    "Rejection",
    "ShortfallError",
    "SpecError",
    "StoreError",
    "ThreatModel",
    "UnknownThreatModel",
    "UsageError",
    "__version__",
    "generate",
    "load",
    "load_spec",
]


def __getattr__(name: str) -> object:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'mwe' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value  # later look-ups find it without coming here
    return value


def __dir__() -> list[str]:
    """The public names and the module's own dunders, not the helpers this file imports."""
    return sorted({*__all__, *(n for n in globals() if n.startswith("__"))})
