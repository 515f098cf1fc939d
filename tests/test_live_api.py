"""Live API tests: they spend a few cents and run only with `--runapi` and a key in the environment."""

from __future__ import annotations

import os

import pytest

import mwe

pytestmark = pytest.mark.api


@pytest.mark.parametrize(
    ("model", "key"),
    [("anthropic/claude-haiku-4-5", "ANTHROPIC_API_KEY"), ("openai/gpt-4o-mini", "OPENAI_API_KEY")],
)
def test_live_build_of_four_items_within_a_cost_limit(model: str, key: str) -> None:
    if not os.environ.get(key):
        pytest.fail(f"--runapi was given but {key} is not set")
    ds = mwe.generate("power-seeking", n=4, model=model, out="out", max_cost=0.25)
    assert len(ds) == 4
    assert 0 < ds.manifest["cost"]["total_usd"] <= 0.25
    assert all(i.scores["quality"] >= ds.manifest["judge"]["threshold"] for i in ds)


@pytest.mark.parametrize(
    ("model", "key", "method"),
    [
        ("anthropic/claude-haiku-4-5", "ANTHROPIC_API_KEY", "samples (k=3)"),
        ("openai/gpt-4o-mini", "OPENAI_API_KEY", "logprobs"),
    ],
)
def test_live_eval_reads_the_provider_the_way_it_can(model: str, key: str, method: str) -> None:
    from mwe.evaluate import run

    if not os.environ.get(key):
        pytest.fail(f"--runapi was given but {key} is not set")
    ds = mwe.generate("sycophancy", n=4, model="fake", out="out")
    _, (summary,) = run(ds.path, model, k=3, limit=4, log_dir="logs", max_cost=0.05, display="none")
    assert summary.methods == {method: 4}
    assert summary.perez is not None and summary.perez.share.n + summary.perez.unanswered == 4
