"""The embedded Gemma 3 270M through llama.cpp, for real (the test command installs the `local` extra)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import mwe
from mwe.providers.base import ClassifyRequest, CompletionRequest
from mwe.providers.local import LocalProvider

pytestmark = pytest.mark.local


@pytest.fixture(scope="module")
def local() -> Iterator[LocalProvider]:
    provider = LocalProvider()
    yield provider
    provider.close()


def test_completion_is_seeded_and_reproducible(local: LocalProvider) -> None:
    req = CompletionRequest(prompt="Question: Would you like more money?\n(A)", max_tokens=12, temperature=0.9, seed=5)
    a, b = local.complete([req, req])
    assert a.text and a.text == b.text
    assert a.output_tokens > 0 and a.input_tokens > 0


def test_an_answer_cut_at_max_tokens_is_marked_truncated(local: LocalProvider) -> None:
    cut = CompletionRequest(prompt="Question: Would you like more money?\n(A)", max_tokens=3, seed=5)
    stopped = CompletionRequest(
        prompt="Question: Would you like more money?\n(A)", max_tokens=60, temperature=0.0, stop=("\n",)
    )
    a, b = local.complete([cut, stopped])
    assert a.truncated and a.output_tokens == 3
    assert not b.truncated  # stopped at the newline, well before its cap


def test_classify_gives_probabilities_independent_of_kv_reuse(local: LocalProvider) -> None:
    target = ClassifyRequest(
        prompt="The capital of France is Paris. True or false? Answer:", options=(" True", " False")
    )
    other = ClassifyRequest(prompt="The capital of France is Rome. True or false? Answer:", options=(" True", " False"))
    first = local.classify([target])[0]
    local.classify([other])  # leaves a different but overlapping prompt in the KV cache
    again = local.classify([target])[0]
    assert sum(first) == pytest.approx(1.0)
    # Evaluating a prompt in other batch shapes moves llama.cpp's quantised results by ~1e-2;
    # a stale or misaligned KV cache moves them by far more.
    assert again == pytest.approx(first, abs=0.02)
    assert first[0] > local.classify([other])[0][0]  # the model prefers the true statement


def test_offline_build_on_the_embedded_model(tmp_path: Path) -> None:
    ds = mwe.generate("power-seeking", n=2, out=tmp_path, max_attempts=16)
    assert ds.manifest["models"]["generation"]["provider"] == "local"
    assert ds.manifest["fake"] is False
    assert len(ds) + sum(ds.shortfall.values()) == 2
    for item in ds:  # one A/B question and one persona statement
        assert 0.0 <= item.scores["label_confidence"] <= 1.0
        expected = "generator log-probability" if item.format == "mcq" else "generator prompt"
        assert item.scores["labelled_by"] == expected
    # Same command again: every request is answered from the cache, none re-sent to the model.
    again = mwe.generate("power-seeking", n=2, out=tmp_path, max_attempts=16)
    usage = again.manifest["usage"]["generation"]
    assert usage["cache_hits"] == usage["requests"] > 0
    assert [i.id for i in again] == [i.id for i in ds]


def test_calibrate_command_runs_offline_on_the_builtin_gold(env: dict[str, str]) -> None:
    import json
    import subprocess
    import sys

    run = subprocess.run(
        [sys.executable, "-m", "mwe", "calibrate", "power-seeking", "--limit", "12", "--out", "out", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["judge"] == "local/gemma-3-270m" and record["n"] == 12 and record["gold_inverted"] is True
    assert 0 <= record["accuracy"] <= 1 and -1 <= record["kappa"] <= 1
    assert json.loads(Path("out/power-seeking/calibration.json").read_text())["local/gemma-3-270m"]["n"] == 12


def test_embedded_model_writes_open_ended_and_persona_items_or_says_why_not(tmp_path: Path) -> None:
    """A base model gets a completion prompt per format; what it cannot write well is rejected
    with a reason, never published unchecked."""
    ds = mwe.generate("political-bias", n=2, out=tmp_path, max_attempts=12)
    assert len(ds) + sum(ds.shortfall.values()) == 2
    for item in ds:
        if item.format == "open_ended":
            assert item.rubric and item.rubric["matching"] and item.rubric["not_matching"] and not item.choices
        else:
            assert item.format == "persona" and item.statement and item.choices == ["Yes", "No"]
            assert 0.0 <= item.scores["label_confidence"] <= 1.0
        assert "quality" in item.scores
    assert all(r.stage and r.reason for r in ds.rejected)
    funnel = ds.manifest["funnel"]
    assert funnel["generated"] == funnel["kept"] + sum(funnel["rejected_by_stage"].values())
