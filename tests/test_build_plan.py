"""One resolved plan: `mwe.generate()` and `mwe build` take the same options, and the loop, the
estimator, the build key and the manifest all read the values BuildPlan resolved once."""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer

import mwe
from mwe.build import BuildOptions, BuildPlan, build, build_key, build_options, estimate
from mwe.build.plan import PRIOR_KEEP_RATE
from mwe.cli import app
from mwe.errors import UsageError
from mwe.progress import QuietReporter
from mwe.providers.local import LocalProvider
from mwe.store import Store

from .helpers import spec

API_ONLY = {"threat_model", "out", "progress", "reporter"}
CLI_ONLY = {"threat_models", "out_dir", "force", "dry_run", "from_review"}


def _cli_params() -> dict[str, object]:
    command = typer.main.get_command(app).commands["build"]  # type: ignore[attr-defined]
    return {p.name: p.default for p in command.params if p.name}


def test_generate_and_the_build_command_accept_the_same_options() -> None:
    shared = inspect.signature(build_options).parameters
    api = inspect.signature(mwe.generate).parameters
    cli = _cli_params()
    assert set(api) - API_ONLY == set(shared), "mwe.generate() and build_options() drifted apart"
    assert "no_cache" in cli  # the command's negative flag for use_cache
    assert (set(cli) - CLI_ONLY - {"no_cache"}) | {"use_cache"} == set(shared), (
        "`mwe build` and build_options() drifted"
    )
    for name, p in shared.items():
        assert api[name].default == p.default, f"generate({name}=…) has another default"
        if name != "use_cache":
            assert cli[name] in (p.default, [] if p.default is None else p.default), f"--{name} has another default"
    assert cli["no_cache"] is False and shared["use_cache"].default is True


def test_the_options_are_checked_the_same_way_for_both() -> None:
    for bad, why in ((dict(n=0), "--n"), (dict(max_cost=-1.0), "--max-cost"), (dict(structured="xml"), "--structured")):
        with pytest.raises(UsageError, match=why):
            build_options(**bad)
    with pytest.raises(UsageError, match="--max-cost"):
        mwe.generate("power-seeking", model="fake", max_cost=-1.0, out="unused")


def test_plan_resolves_formats_budgets_and_defaults_from_spec_and_options() -> None:
    tm = spec("power-seeking")
    plan = BuildPlan.of(tm, BuildOptions(n=7, model="fake"))
    assert [(f.name, f.n, f.budget) for f in plan.formats] == [("mcq", 4, 20), ("persona", 3, 20)]
    assert plan.max_attempts == 40
    assert {k: v for k, v in plan.formats[0].quotas.items()} == tm.quotas(4)
    assert plan.temperature == tm.defaults.temperature and plan.judge_threshold == tm.judge.threshold
    assert (plan.embedder, plan.dedup_cutoff) == (tm.dedup.embedder, tm.dedup.threshold)
    asked = BuildPlan.of(
        tm,
        BuildOptions(
            n=30, temperature=0.2, judge_threshold=8, max_attempts=9, formats=["persona"], embedder="tfidf-svd"
        ),
    )
    assert [(f.name, f.n, f.budget) for f in asked.formats] == [("persona", 30, 9)]
    assert (asked.temperature, asked.judge_threshold, asked.embedder) == (0.2, 8, "tfidf-svd")
    assert asked.dedup_cutoff == 0.95  # another embedder brings its own default threshold
    one = BuildPlan.of(tm, BuildOptions(n=1))
    assert [f.name for f in one.formats] == ["mcq"]  # a format whose share is 0 is left out
    with pytest.raises(UsageError, match="no format 'essay'"):
        BuildPlan.of(tm, BuildOptions(formats=["essay"]))


def test_the_first_round_expects_the_generating_models_own_keep_rate() -> None:
    """The embedded model keeps far fewer items than the general prior assumes; planning with the
    prior made the quick start ask for too little and run three rounds, each as long as its
    slowest completion."""
    tm = spec("power-seeking")
    assert BuildPlan.of(tm, BuildOptions(model="fake")).keep_rate_prior == PRIOR_KEEP_RATE
    assert LocalProvider.keep_rate is not None and LocalProvider.keep_rate < PRIOR_KEEP_RATE
    assert BuildPlan.of(tm, BuildOptions(model="local")).keep_rate_prior == LocalProvider.keep_rate


def test_build_key_hashes_options_as_asked() -> None:
    tm = spec("power-seeking")
    base = build_key(tm, BuildOptions(n=5, model="fake"))
    assert base == BuildPlan.of(tm, BuildOptions(n=5, model="fake")).key()
    assert base != build_key(tm, BuildOptions(n=6, model="fake"))
    assert base != build_key(tm, BuildOptions(n=5, model="fake", judge_threshold=7))


def test_manifest_and_estimate_record_the_plan(tmp_path: Path) -> None:
    tm = spec("power-seeking")
    opts = BuildOptions(n=6, model="fake", temperature=0.4, max_attempts=50, embedder="tfidf-char")
    plan = BuildPlan.of(tm, opts)
    with pytest.warns(UserWarning):
        ds = build(tm, opts, Store(tmp_path))
    m = ds.manifest
    assert m["build_key"] == plan.key()
    assert (m["build"]["n"], m["build"]["temperature"], m["build"]["max_attempts"]) == (6, 0.4, plan.max_attempts)
    assert (m["dedup"]["embedder"], m["dedup"]["threshold"]) == (plan.embedder, plan.dedup_cutoff)
    assert m["judge"]["threshold"] == plan.judge_threshold
    assert {f: row["max_attempts"] for f, row in m["generator"]["by_format"].items()} == {
        f.name: f.budget for f in plan.formats
    }
    est = estimate(tm, opts)
    assert est["n"] == plan.n and est["stages"]["generation"]["max_requests"] == plan.max_attempts


class _Stages(QuietReporter):
    """Records the stage names a build reports."""

    def __init__(self) -> None:
        self.names: list[str] = []

    @contextlib.contextmanager
    def stage(self, description: str, total: int) -> Iterator[Callable[[int], None]]:
        self.names.append(description)
        yield lambda n: None


def test_each_format_run_names_its_format_in_the_progress_stages(tmp_path: Path) -> None:
    stages = _Stages()
    with pytest.warns(UserWarning):
        mwe.generate("power-seeking", n=4, model="fake", out=tmp_path, reporter=stages)
    assert "mcq: round 1: generate" in stages.names and "persona: round 1: generate" in stages.names
