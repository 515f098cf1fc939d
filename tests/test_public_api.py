from __future__ import annotations

import subprocess
import sys

import mwe


def test_public_namespace_is_small_and_matches_all() -> None:
    public = {n for n in dir(mwe) if not n.startswith("_")} - {"annotations"}
    exported = set(mwe.__all__) - {"__version__"}
    assert exported <= public
    modules = {
        "cache",
        "calibration",
        "card",
        "config",
        "costs",
        "cli",
        "embedders",
        "engine",
        "errors",
        "filters",
        "generators",
        "items",
        "build",
        "manifest",
        "progress",
        "providers",
        "spec",
        "store",
        "template",
        "balance",
        "diff",
        "export",
        "report",
        "metrics",
        "inspect",
        "evaluate",
        "reviews",
        "review_app",
        "review_gold",
        "reviewed",
        "audit",
    }
    assert public - exported <= modules
    assert len(mwe.__all__) <= 25


def test_import_does_not_load_sdks_or_the_model() -> None:
    code = "import sys, mwe; print(','.join(m for m in ('anthropic','openai','llama_cpp','instructor','sklearn') if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == ""


def test_every_error_has_a_documented_exit_code() -> None:
    codes = {
        cls.__name__: cls.exit_code
        for cls in (
            mwe.SpecError,
            mwe.UnknownThreatModel,
            mwe.UsageError,
            mwe.ShortfallError,
            mwe.ProviderError,
            mwe.StoreError,
            mwe.CostLimitReached,
            mwe.JudgeNotCalibrated,
        )
    }
    assert codes == {
        "SpecError": 2,
        "UnknownThreatModel": 2,
        "UsageError": 2,
        "ShortfallError": 3,
        "ProviderError": 4,
        "StoreError": 5,
        "CostLimitReached": 6,
        "JudgeNotCalibrated": 7,
    }
