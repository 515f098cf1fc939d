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
