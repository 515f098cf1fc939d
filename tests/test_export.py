"""Exports round-trip, and the Inspect export runs in Inspect itself (mockllm), offline."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mwe
from mwe.calibration import load_gold

from .test_cli import mwe as run_cli


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, mwe.Dataset]:
    root = tmp_path_factory.mktemp("gen")
    return {
        name: mwe.generate(name, n=12, model="fake", out=root)
        for name in ("power-seeking", "alignment-faking", "political-bias")
    }


@pytest.fixture
def chdir(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _mock_model_args(content: str) -> dict[str, Any]:
    """Inspect's own mockllm, answering `content` every time. The usage is set because without
    it mockllm counts tokens with tiktoken, which downloads its vocabulary (no network here). A
    callable, not an infinite iterator: Inspect writes model_args into the log and would try to
    list an iterator."""
    from inspect_ai.model import ModelOutput, ModelUsage

    out = ModelOutput.from_content(model="mockllm/model", content=content)
    out.usage = ModelUsage(input_tokens=10, output_tokens=3, total_tokens=13)

    def answer(*_: Any) -> ModelOutput:
        return out.model_copy(deep=True)

    return {"custom_outputs": answer}


# --- inspect ---------------------------------------------------------------------------------


def test_inspect_export_is_read_by_json_dataset_as_published(builds: dict[str, mwe.Dataset], tmp_path: Path) -> None:
    from inspect_ai.dataset import json_dataset

    ds = builds["power-seeking"]
    files = ds.to_inspect(tmp_path)
    assert {p.name for p in files} == {"mcq.jsonl", "task.py"}
    samples = list(json_dataset(str(tmp_path / "mcq.jsonl")))
    assert [s.id for s in samples] == [i.id for i in ds]
    for s, item in zip(samples, ds, strict=True):
        assert s.input == item.question and s.choices == item.choices  # order as published
        assert s.target == item.answer_matching_behavior
        assert s.metadata and s.metadata["facet"] == item.facet and s.metadata["format"] == item.format


def test_inspect_task_runs_with_mockllm_and_scores_every_sample(builds: dict[str, mwe.Dataset], chdir: Path) -> None:
    from inspect_ai import eval as inspect_eval

    ds = builds["power-seeking"]
    ds.to_inspect(chdir / "ins")
    os.chdir(chdir / "ins")
    logs = inspect_eval("task.py", model="mockllm/model", model_args=_mock_model_args("ANSWER: A"), display="none")
    (log,) = logs
    assert log.status == "success" and log.samples is not None
    assert len(log.samples) == len(ds) and all(s.scores for s in log.samples)
    assert log.results is not None
    metrics = log.results.scores[0].metrics
    share_a = sum(i.answer_matching_behavior == "A" for i in ds) / len(ds)
    assert metrics["shows_behaviour"].value == pytest.approx(share_a)  # always "A" scores the share keyed at A
    assert metrics["shows_behaviour_ci_low"].value < share_a < metrics["shows_behaviour_ci_high"].value
    assert metrics["unanswered"].value == 0.0


@pytest.mark.parametrize(
    ("content", "unanswered"),
    [("I would rather not pick one of these.", 1.0), ("(B), because a human should decide.", 0.0)],
)
def test_inspect_task_counts_samples_naming_no_option_apart(
    builds: dict[str, mwe.Dataset], chdir: Path, content: str, unanswered: float
) -> None:
    """A model that never writes "ANSWER: X" is not scored as "does not show the behaviour": with no
    option named the sample is unanswered; a letter written another way still counts."""
    import math

    from inspect_ai import eval as inspect_eval

    ds = builds["power-seeking"]
    ds.to_inspect(chdir / "ins")
    os.chdir(chdir / "ins")
    (log,) = inspect_eval("task.py", model="mockllm/model", model_args=_mock_model_args(content), display="none")
    assert log.status == "success" and log.results is not None
    metrics = log.results.scores[0].metrics
    assert metrics["unanswered"].value == unanswered
    n = len(ds)
    if unanswered:
        assert math.isnan(metrics["shows_behaviour"].value)
        assert metrics["unanswered_ci_low"].value > 0.6  # 95 % Wilson interval of n of n
    else:
        share_b = sum(i.answer_matching_behavior == "B" for i in ds) / n
        assert metrics["shows_behaviour"].value == pytest.approx(share_b)


def test_inspect_alignment_faking_asks_each_item_under_both_conditions(
    builds: dict[str, mwe.Dataset], chdir: Path
) -> None:
    from inspect_ai import eval as inspect_eval

    ds = builds["alignment-faking"]
    files = ds.to_inspect(chdir / "af")
    assert {p.name for p in files} == {"alignment_faking.jsonl", "task.py"}
    rows = _jsonl(chdir / "af" / "alignment_faking.jsonl")
    assert len(rows) == 2 * len(ds)
    assert {r["metadata"]["condition"] for r in rows} == {"training", "unmonitored"}
    os.chdir(chdir / "af")
    (log,) = inspect_eval("task.py", model="mockllm/model", model_args=_mock_model_args("ANSWER: B"), display="none")
    assert log.status == "success" and log.samples is not None and len(log.samples) == 2 * len(ds)
    for s in log.samples:
        system = [m for m in s.messages if m.role == "system"]
        assert system and system[0].text == s.metadata["condition_system"]
        assert s.scores


def test_inspect_open_ended_uses_the_rubric_as_the_graders_criterion(
    builds: dict[str, mwe.Dataset], chdir: Path
) -> None:
    from inspect_ai import eval as inspect_eval

    ds = builds["political-bias"]
    files = ds.to_inspect(chdir / "oe")
    assert {p.name for p in files} == {"mcq.jsonl", "open_ended.jsonl", "task.py"}
    rows = _jsonl(chdir / "oe" / "open_ended.jsonl")
    open_items = [i for i in ds if i.format == "open_ended"]
    assert len(rows) == len(open_items)
    for row, item in zip(rows, open_items, strict=True):
        assert item.rubric and item.rubric["matching"].rstrip(".") in row["target"] and "choices" not in row
    os.chdir(chdir / "oe")
    logs = inspect_eval("task.py", model="mockllm/model", model_args=_mock_model_args("GRADE: C"), display="none")
    assert all(log.status == "success" for log in logs)
    graded = next(log for log in logs if log.eval.task.endswith("open_ended"))
    assert graded.samples and all(s.scores for s in graded.samples)


# --- anthropic-evals, hf, csv ----------------------------------------------------------------


def test_anthropic_evals_export_reads_back_through_the_gold_reader(
    builds: dict[str, mwe.Dataset], tmp_path: Path
) -> None:
    ds = builds["power-seeking"]
    files = ds.to_anthropic_evals(tmp_path)
    assert {p.name for p in files} == {"power-seeking.jsonl", "power-seeking-persona.jsonl"}
    ab = [i for i in ds if i.format == "mcq"]
    rows = _jsonl(tmp_path / "power-seeking.jsonl")
    assert all(r["answer_matching_behavior"] in (" (A)", " (B)") for r in rows)
    back = load_gold(tmp_path / "power-seeking.jsonl")
    assert [(g.question, list(g.choices), g.answer) for g in back] == [
        (i.question, i.choices, i.answer_matching_behavior) for i in ab
    ]
    persona = _jsonl(tmp_path / "power-seeking-persona.jsonl")
    assert set(persona[0]) == {
        "question",
        "statement",
        "label_confidence",
        "answer_matching_behavior",
        "answer_not_matching_behavior",
    }
    by_statement = {i.statement: i for i in ds if i.statement}
    for row in persona:
        item = by_statement[row["statement"]]
        assert row["answer_matching_behavior"] == (" Yes" if item.answer_matching_behavior == "A" else " No")


def test_hf_export_loads_with_datasets_with_fixed_types(builds: dict[str, mwe.Dataset], tmp_path: Path) -> None:
    import datasets

    ds = builds["political-bias"]  # open-ended and persona items: fields absent in one format
    ds.to_hf(tmp_path)
    loaded = datasets.load_dataset("json", data_files=str(tmp_path / "data.jsonl"), split="train")
    assert loaded["id"] == [i.id for i in ds]
    assert loaded.features["quality"].dtype == "float64"
    assert loaded.features["statement"].dtype == "string" and loaded.features["choice_A"].dtype == "string"
    for row, item in zip(loaded, ds, strict=True):
        assert row["question"] == item.question and row["statement"] == (item.statement or "")
        assert json.loads(row["scores"]) == item.scores
        assert row["rubric_matching"] == (item.rubric or {}).get("matching", "")
    assert "load_dataset" in (tmp_path / "README.md").read_text()


def test_csv_export_round_trips(builds: dict[str, mwe.Dataset], tmp_path: Path) -> None:
    ds = builds["power-seeking"]
    (path,) = ds.to_csv(tmp_path)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == [i.id for i in ds]
    for r, item in zip(rows, ds, strict=True):
        assert [r["choice_A"], r["choice_B"]] == item.choices
        assert r["answer_matching_behavior"] == item.answer_matching_behavior
        assert r["question"] == item.question


def test_exports_never_write_into_the_published_version(builds: dict[str, mwe.Dataset]) -> None:
    ds = builds["power-seeking"]
    with pytest.raises(mwe.UsageError, match="outside the published version"):
        ds.export("csv", ds.path / "csv")
    with pytest.raises(mwe.UsageError, match="unknown export format 'xml'; known: anthropic-evals, csv, hf, inspect"):
        ds.export("xml")


def test_export_command_defaults_to_an_exports_folder(builds: dict[str, mwe.Dataset], tmp_path: Path) -> None:
    ds = builds["power-seeking"]
    r = run_cli("export", str(ds.path.parent), "--format", "inspect", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    folder = tmp_path / "exports" / f"power-seeking-v{ds.manifest['version']}-inspect"
    assert (folder / "task.py").is_file() and "inspect eval" in r.stderr
    bad = run_cli("export", str(ds.path), "--format", "xml", cwd=tmp_path)
    assert bad.returncode == 2 and "known: anthropic-evals" in bad.stderr
