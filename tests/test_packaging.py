"""Shipped specs are found from a built wheel too, not only from an editable install."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

from .conftest import REPO


def test_wheel_ships_the_specs_and_finds_them(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    wheel = next((tmp_path / "dist").glob("mwe-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"mwe/_review_assets/{f}" for f in ("index.html", "review.js", "review.css")} <= names  # mwe review's page
    assert {"mwe/build/__init__.py", "mwe/build/run.py", "mwe/manifest.py"} <= names  # not taken for a build dir
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = "import mwe.spec as s; d = s.shipped_dir(); print(d); print(sorted(s.known_specs([d])))"
    env = {**os.environ, "PYTHONPATH": str(site)}
    # Run from an empty directory so neither ./threat_models nor the repo's src is on the path.
    out = subprocess.run(
        [sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=env,
    ).stdout.splitlines()
    assert out[0] == str(site / "mwe" / "_threat_models")
    assert "power-seeking" in out[1] and "sycophancy" in out[1]
