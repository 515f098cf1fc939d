"""The build: plan → generate → rules → judge → dedup → balance → publish.

`options` (what was asked) → `plan` (every derived value, resolved once) → `loop` (one format's
rounds until its quotas are met by kept items or its budget is spent) → `run` (providers, engines,
publish) with `record` (the manifest's figures); `estimate` is the dry run over the same plan.
The build knows stages, not providers' details.
"""

from __future__ import annotations

from .estimate import estimate
from .loop import request_text
from .models import make_providers
from .options import BuildOptions, build_options, options_from
from .plan import BuildPlan, FormatPlan, build_key
from .record import STAGES, shortfall_message
from .run import build, check_calibration

__all__ = [
    "STAGES",
    "BuildOptions",
    "BuildPlan",
    "FormatPlan",
    "build",
    "build_key",
    "build_options",
    "check_calibration",
    "estimate",
    "make_providers",
    "options_from",
    "request_text",
    "shortfall_message",
]
