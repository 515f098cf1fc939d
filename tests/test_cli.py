"""The CLI as a user runs it: real `python -m mwe` processes, real exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from .conftest import REPO


def mwe(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mwe", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_build_keeps_exactly_n_and_second_run_makes_v2(tmp_path: Path) -> None:
    out = tmp_path / "DIR"
    first = mwe("build", "power-seeking", "--n", "30", "--model", "fake", "--out", str(out))
    assert first.returncode == 0, first.stderr
    v1 = out / "power-seeking" / "v1"
    assert _lines(v1 / "items.jsonl") == 30
    snapshot = {p.name: p.read_bytes() for p in v1.iterdir()}
    second = mwe("build", "power-seeking", "--n", "30", "--model", "fake", "--out", str(out))
    assert second.returncode == 0, second.stderr
    assert (out / "power-seeking" / "LATEST").read_text().strip() == "v2"
    assert {p.name: p.read_bytes() for p in v1.iterdir()} == snapshot
    for version in ("v1", "v2"):
        d = out / "power-seeking" / version
        m = json.loads((d / "manifest.json").read_text())
        assert m["counts"] == {"items": _lines(d / "items.jsonl"), "rejected": _lines(d / "rejected.jsonl")}
    assert "FAKE" in first.stdout + first.stderr


def test_unknown_threat_model_exits_2_and_lists_known_names(tmp_path: Path) -> None:
    r = mwe("build", "no-such-thing", "--model", "fake", "--out", str(tmp_path))
    assert r.returncode == 2
    assert "unknown threat model" in r.stderr and "power-seeking" in r.stderr and "sycophancy" in r.stderr


def test_invalid_spec_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    data = yaml.safe_load((REPO / "threat_models" / "power-seeking.yaml").read_text())
    data["facets"][2]["quota"] = -1
    (tmp_path / "power-seeking.yaml").write_text(yaml.safe_dump(data))
    r = mwe("build", "power-seeking.yaml", "--model", "fake", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2
    assert "power-seeking.yaml: facets[2].quota: must be > 0" in r.stderr
    assert not (tmp_path / "out" / "power-seeking").exists()


def test_invalid_yaml_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("name: [unclosed\n")
    r = mwe("validate", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "bad.yaml: invalid YAML" in r.stderr


def test_unwritable_out_exits_5_before_building(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    r = mwe("build", "power-seeking", "--model", "fake", "--out", str(tmp_path / "file" / "sub"))
    assert r.returncode == 5 and "not writable" in r.stderr
    assert "round 1" not in r.stderr


def test_unknown_model_exits_2(tmp_path: Path) -> None:
    r = mwe("build", "power-seeking", "--model", "nosuch/model", "--out", str(tmp_path))
    assert r.returncode == 2 and "fake" in r.stderr and "local" in r.stderr


def test_build_without_names_builds_every_spec_then_skips_up_to_date_ones(tmp_path: Path) -> None:
    args = ("build", "--n", "3", "--model", "fake", "--out", "gen")
    first = mwe(*args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    from mwe.spec import known_specs

    shipped = set(known_specs())
    assert {
        p.name for p in (tmp_path / "gen").iterdir() if not p.name.startswith(".")
    } == shipped  # run locks are hidden
    assert len(shipped) >= 10
    again = mwe(*args, cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.count("up to date") == len(shipped)
    forced = mwe(*args, "--force", cwd=tmp_path)
    assert forced.returncode == 0
    assert (tmp_path / "gen" / "sycophancy" / "LATEST").read_text().strip() == "v2"


def test_shortfall_exits_3_and_still_publishes(tmp_path: Path) -> None:
    r = mwe(
        "build",
        "power-seeking",
        "--n",
        "10",
        "--model",
        "fake",
        "--judge-threshold",
        "10",
        "--max-attempts",
        "10",
        "--out",
        str(tmp_path),
    )
    assert r.returncode == 3 and "fell short" in r.stderr
    m = json.loads((tmp_path / "power-seeking" / "v1" / "manifest.json").read_text())
    assert sum(m["shortfall"].values()) == 10 - m["counts"]["items"] > 0


def test_new_writes_a_template_that_validates_and_builds(tmp_path: Path) -> None:
    assert mwe("new", "my-behaviour", cwd=tmp_path).returncode == 0
    assert mwe("new", "my-behaviour", cwd=tmp_path).returncode == 2  # no silent overwrite
    r = mwe("validate", "threat_models/my-behaviour.yaml", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr  # the placeholder text is not a spec yet
    assert "threat_models/my-behaviour.yaml: definition: still holds the placeholder text of `mwe new`" in r.stderr
    assert "facets[0].name" in r.stderr and "examples[1].choices[0]" in r.stderr
    assert "my-behaviour" in mwe("list", cwd=tmp_path).stdout
    r = mwe("build", "my-behaviour", "--n", "4", "--model", "fake", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "generated" / "my-behaviour" / "v1" / "items.jsonl").is_file()


def test_validate_passes_a_template_once_its_placeholders_are_replaced(tmp_path: Path) -> None:
    from mwe.template import PLACEHOLDERS

    assert mwe("new", "my-behaviour", cwd=tmp_path).returncode == 0
    path = tmp_path / "threat_models" / "my-behaviour.yaml"
    text = path.read_text()
    for i, placeholder in enumerate(PLACEHOLDERS):
        assert placeholder in text  # every placeholder is one the template writes
        text = text.replace(placeholder, f"own text number {i}")
    path.write_text(text)
    r = mwe("validate", str(path), cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_validate_all_and_show(tmp_path: Path) -> None:
    assert mwe("validate").returncode == 0
    mwe("build", "sycophancy", "--n", "3", "--model", "fake", "--out", str(tmp_path))
    shown = mwe("show", str(tmp_path / "sycophancy"))
    assert shown.returncode == 0 and "sycophancy v1" in shown.stdout and "FAKE DATA" in shown.stdout
    as_json = json.loads(mwe("show", str(tmp_path / "sycophancy" / "v1"), "--json").stdout)
    assert as_json["counts"]["items"] == 3


def test_show_of_a_missing_dataset_exits_5(tmp_path: Path) -> None:
    r = mwe("show", str(tmp_path))
    assert r.returncode == 5 and "not a dataset version" in r.stderr


def test_usage_mistakes_get_a_message_and_exit_2_never_a_traceback(tmp_path: Path) -> None:
    """typer >= 0.29 raises its own copy of click's usage errors; they must still end in a message."""
    for args in ([], ["report"], ["frobnicate"], ["show", "x", "--bogus"], ["diff", "only-one"]):
        r = mwe(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert "Traceback" not in r.stderr + r.stdout, (args, r.stderr)
        assert ("Usage" in r.stdout + r.stderr) if not args else ("Error" in r.stderr), (args, r.stderr)


def test_eval_without_inspect_names_the_extra_to_install(tmp_path: Path) -> None:
    """The plan is made before anything runs, even for --dry-run: without Inspect AI that must be
    a MissingDependency (exit 4) naming the extra, not an ImportError."""
    code = (
        "import sys, builtins\n"
        "real = builtins.__import__\n"
        "def no_inspect(name, *a, **k):\n"
        "    if name.startswith('inspect_ai'):\n"
        "        raise ImportError(name)\n"
        "    return real(name, *a, **k)\n"
        "builtins.__import__ = no_inspect\n"
        "from mwe.cli import main\n"
        "sys.argv = ['mwe', 'eval', sys.argv[1], '--model', 'local', '--dry-run', '--allow-fake']\n"
        "main()\n"
    )
    assert mwe("build", "power-seeking", "--n", "2", "--model", "fake", "--out", str(tmp_path)).returncode == 0
    r = subprocess.run([sys.executable, "-c", code, str(tmp_path / "power-seeking")], capture_output=True, text=True)
    assert r.returncode == 4, r.stderr
    assert "Traceback" not in r.stderr and "[eval]" in r.stderr
