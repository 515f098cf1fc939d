"""mwe: model-written evaluation datasets, from a threat-model spec to a versioned JSONL dataset.

```python
import mwe
ds = mwe.generate("power-seeking", n=20)          # embedded model, offline
ds = mwe.load("generated/power-seeking")          # newest real (not FAKE) version
```
"""

from __future__ import annotations

__version__ = "0.1.0"

from ._api import generate
from .errors import (
    AuthError,
    CostLimitReached,
    JudgeNotCalibrated,
    MweError,
    ProviderError,
    ShortfallError,
    SpecError,
    StoreError,
    UnknownThreatModel,
    UsageError,
)
from .items import Dataset, Item, Rejection
from .spec import ThreatModel, load_spec
from .store import load

__all__ = [
    "AuthError",
    "CostLimitReached",
    "Dataset",
    "Item",
    "JudgeNotCalibrated",
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
