from __future__ import annotations

import subprocess
import sys

import pytest

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
        "dataset",
        "gold",
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


HEAVY = ("anthropic", "openai", "llama_cpp", "instructor", "sklearn", "scipy", "numpy", "pydantic", "yaml")


def _loaded_after(statement: str) -> tuple[set[str], set[str]]:
    """(heavy third-party packages, mwe modules) in sys.modules after `statement`, in a fresh
    interpreter so nothing this test process imported earlier counts."""
    code = (
        f"import sys; {statement}; "
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules)); "
        "print(','.join(sorted(m for m in sys.modules if m == 'mwe' or m.startswith('mwe.'))))"
    )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    return set(filter(None, lines[0].split(","))), set(lines[1].split(","))


def test_import_does_not_load_sdks_or_the_model() -> None:
    heavy, ours = _loaded_after("import mwe")
    assert heavy == set()
    assert ours == {"mwe", "mwe._version"}  # not the pipeline, not even the spec model


def test_cli_module_loads_no_library_module() -> None:
    """What `mwe --help` pays for: typer and rich, the exit codes, nothing of the pipeline."""
    heavy, ours = _loaded_after("import mwe.cli")
    assert heavy == set()
    commands = {m for m in ours if m.startswith("mwe.cli.")}  # the CLI package's own modules
    assert {"mwe.cli.build", "mwe.cli.data"} <= commands
    assert ours - commands == {"mwe", "mwe._version", "mwe.cli", "mwe.errors"}


def test_public_names_load_on_first_use() -> None:
    import mwe.errors
    import mwe.store

    assert mwe.load is mwe.store.load
    assert mwe.StoreError is mwe.errors.StoreError
    for name in mwe.__all__:
        assert getattr(mwe, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'pipeline_options'"):
        _ = mwe.pipeline_options  # type: ignore[attr-defined]
    heavy, ours = _loaded_after("import mwe; mwe.UsageError")
    assert heavy == set() and ours == {"mwe", "mwe._version", "mwe.errors"}


def test_every_error_class_is_exported() -> None:
    """The README's exit-code table names these classes: a user must reach each as `mwe.X`."""
    import mwe.errors

    classes = {
        name
        for name, obj in vars(mwe.errors).items()
        if isinstance(obj, type) and issubclass(obj, mwe.errors.MweError) and obj.__module__ == "mwe.errors"
    }
    assert "MissingDependency" in classes
    assert classes <= set(mwe.__all__)
    assert "FakeDataWarning" in mwe.__all__  # the warning the README names, for warnings filters


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
