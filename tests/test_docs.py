"""The docs: `mkdocs build --strict` passes (so a broken link or a docstring mkdocstrings cannot read
fails CI), the API reference covers every public name, and the README stays a front door whose
links lead into docs/ and whose test command is the one CI runs."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mwe

from .conftest import REPO

README = REPO / "README.md"
DOCS = REPO / "docs"

_have_mkdocs = all(importlib.util.find_spec(m) is not None for m in ("mkdocs", "material", "mkdocstrings_handlers"))


@pytest.mark.skipif(
    not _have_mkdocs,
    reason="mkdocs, mkdocs-material or mkdocstrings[python] is not installed (they are in the dev extra)",
)
def test_docs_build_strict_and_document_every_public_name(tmp_path: Path) -> None:
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # Material's end-of-life banner, not a docs problem
    site = tmp_path / "site"
    r = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(REPO / "mkdocs.yml"), "--site-dir", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "WARNING" not in r.stderr, r.stderr
    reference = (site / "reference" / "index.html").read_text(encoding="utf-8")
    missing = [n for n in mwe.__all__ if n != "__version__" and f'id="mwe.{n}"' not in reference]
    assert not missing, f"public names without an entry in the API reference: {missing}"
    for page in sorted(DOCS.glob("*.md")):  # every page is in the nav and was built
        name = "" if page.stem == "index" else page.stem
        assert (site / name / "index.html").is_file(), page.name


def test_readme_is_a_front_door_whose_links_lead_into_docs() -> None:
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    # .ci/run runs this exact line; the README shows it under "Quick start".
    assert 'pip install -e ".[local,dev]" && python -m pytest' in text
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -q -e ".[local,dev]" && python -m pytest' in ci
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if "://" not in t]
    assert any(t.startswith("docs/") for t in local)
    assert [t for t in local if not (REPO / t).exists()] == []


def test_nothing_a_user_reads_points_outside_the_repository() -> None:
    """README, docs, the package (docstrings, messages, shipped files) and the shipped specs name no
    file that exists only beside the repository, nor a source path a package user does not have."""
    outside = re.compile(r"\.\./shared|shared/DESIGN|DESIGN\.md|STYLE\.md")
    source_path = re.compile(r"src/mwe/")
    pages = [README, *sorted(DOCS.glob("*.md"))]
    package = [p for p in sorted((REPO / "src" / "mwe").rglob("*")) if p.suffix in {".py", ".md", ".html", ".js"}]
    specs = sorted((REPO / "threat_models").glob("*.yaml"))
    found = []
    for path in [*pages, *package, *specs]:
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if outside.search(line) or (path in pages and path.name != "development.md" and source_path.search(line)):
                found.append(f"{path.relative_to(REPO)}:{n}: {line.strip()}")
    assert found == []
