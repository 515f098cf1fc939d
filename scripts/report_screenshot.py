"""Render `mwe report` in headless Chromium: a screenshot and a check that the page works.

Needs Debian's `chromium` (`apt-get install chromium`); it is not a Python package, so this is a
script and not part of the test suite. Builds a fake power-seeking set (offline, a few seconds),
writes its report, then asks Chromium for:

1. a full-page screenshot (`report.png`),
2. the DOM after the page's script ran, opened plain and opened with a filter in the URL
   (`#status=rejected`): the row counter must read "N of N rows" and then "R of N rows" with R
   the number of rejections, which only happens when the inline script ran without an error,
3. the browser log, which must hold no console message (a JavaScript error is one), and the
   file itself, which must reference nothing outside it (the report must work offline).

Usage: python scripts/report_screenshot.py [--out DIR]   (exit 0 when every check passes)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    sys.exit("chromium not found: install it with `apt-get install chromium` (Debian) and run again")


def browse(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=Path("reports/screenshot"), help="folder for report.html, report.png"
    )
    args = parser.parse_args()
    import mwe
    from mwe.report import write_report

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("MWE_CACHE_DIR", str(Path(tmp) / "cache"))
        ds = mwe.generate("power-seeking", n=60, model="fake", out=Path(tmp) / "generated")
        html = write_report(ds, args.out / "report.html")
        rejected = len(ds.rejected)
    total = len(ds) + rejected
    url = html.resolve().as_uri()
    failures: list[str] = []

    shot = browse(url, "--window-size=1400,2400", f"--screenshot={(args.out / 'report.png').resolve()}")
    png = args.out / "report.png"
    if shot.returncode != 0 or not png.is_file() or png.stat().st_size < 20_000:
        failures.append(
            f"no usable screenshot (exit {shot.returncode}, {png.stat().st_size if png.is_file() else 0} bytes)"
        )

    checks = [
        ("plain", "", f"{total} of {total} rows"),
        ("filtered", "#status=rejected", f"{rejected} of {total} rows"),
    ]
    logs = shot.stderr
    for name, fragment, expected in checks:
        dom = browse(url + fragment, "--dump-dom")
        logs += dom.stderr
        counter = re.search(r'<span id="shown">([^<]*)</span>', dom.stdout)
        seen = counter.group(1) if counter else "(no counter)"
        print(f"{name}: row counter reads {seen!r}, expected {expected!r}")
        if seen != expected or f'data-rows="{total}"' not in dom.stdout:
            failures.append(f"{name} view: the table script did not run as expected")
        svgs = dom.stdout.count("<svg")
        print(f"{name}: {svgs} inline SVG plots")
        if svgs < 5:
            failures.append(f"{name} view: {svgs} plots, expected 5")

    errors = [ln for ln in logs.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    fetched = re.findall(
        r"""(?:src|href)\s*=\s*["']?(?:https?:)?//[^"' >]+|url\(\s*["']?https?:[^)]+|@import""", html.read_text()
    )
    print(f"console messages: {len(errors)}; references to anything outside the file: {len(fetched)}")
    failures += [f"console: {ln}" for ln in errors] + [f"external reference: {ref}" for ref in fetched]
    print(f"screenshot: {png} ({png.stat().st_size if png.is_file() else 0} bytes); report: {html}")
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
