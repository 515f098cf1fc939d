"""Drive `mwe review` in headless Chromium: a short review through the page, and a screenshot.

Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`) and
selenium (`pip install 'mwe[dev]'`); no browser is downloaded. Builds a FAKE power-seeking set
(offline, a few seconds) under OUT/generated, serves it with `mwe review --sample 10` on a free
port of 127.0.0.1, then presses the page's keys as a reviewer would (accept, relabel, reject with
the first listed reason, ambiguous, undo, a blind answer, two more accepts), checks that the review
file holds those decisions and that the browser console stayed clean, and saves OUT/review.png
showing the page mid-review. OUT/generated stays, so `mwe calibrate power-seeking --model fake
--gold OUT/generated/power-seeking/v1` and `mwe build power-seeking --from-review …` can follow.

Usage: python scripts/review_screenshot.py [--out DIR]   (exit 0 when every check passes)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--window-size=1280,900",
)
KEYS = ["a", "l", "r", "1", "m", "u", "b", "A", "b", "a", "a"]
"""accept, relabel, reject (reason 1), ambiguous, undo it, blind on, blind answer A, blind off, accept ×2."""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("reports/review-screenshot"), help="folder for review.png")
    args = parser.parse_args()
    chromium, driver_path = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (chromium and driver_path):
        sys.exit(
            "chromium or chromedriver not found: apt-get install chromium chromium-driver (Debian), then run again"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import mwe

    args.out.mkdir(parents=True, exist_ok=True)
    generated = args.out / "generated"
    shutil.rmtree(generated, ignore_errors=True)
    os.environ.setdefault("MWE_CACHE_DIR", str(args.out / "cache"))
    ds = mwe.generate("power-seeking", n=24, model="fake", out=generated)
    port = _port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mwe",
            "review",
            str(ds.path),
            "--sample",
            "10",
            "--reviewer",
            "demo",
            "--port",
            str(port),
        ]
    )
    failures: list[str] = []
    try:
        for _ in range(100):
            try:
                _get(url + "/api/progress")
                break
            except OSError:
                time.sleep(0.2)
        opts = webdriver.ChromeOptions()
        opts.binary_location = chromium
        profile = tempfile.mkdtemp(prefix="mwe-review-chromium-")
        for flag in (*FLAGS, f"--user-data-dir={profile}"):
            opts.add_argument(flag)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        browser = webdriver.Chrome(service=Service(driver_path), options=opts)
        try:
            browser.get(url + "/")
            counts = browser.find_element(By.ID, "counts")
            WebDriverWait(browser, 15).until(lambda d: counts.text.startswith("0 of 10"))
            for key in KEYS:
                before = counts.text
                ActionChains(browser).send_keys(key).perform()
                if key not in ("r", "b"):
                    WebDriverWait(browser, 15).until(lambda d, b=before: counts.text != b)
            time.sleep(0.3)
            print("page:", counts.text)
            browser.save_screenshot(str(args.out / "review.png"))
            severe = [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]
            failures += [f"console: {m}" for m in severe]
        finally:
            browser.quit()
            shutil.rmtree(profile, ignore_errors=True)
        progress = _get(url + "/api/progress")
    finally:
        server.terminate()
        server.wait(10)
    review_file = ds.path.parent / "reviews" / "v1.demo.jsonl"
    for line in review_file.read_text().splitlines():
        row = json.loads(line)
        if row["type"] != "session":
            print(json.dumps({k: v for k, v in row.items() if k not in ("reviewer", "time")}))
    want = {"accept": 3, "reject": 1, "relabel": 1, "ambiguous": 0}
    blind = progress["decisions"]
    # the blind answer is an accept or a relabel, depending on the item's key
    if blind["reject"] != 1 or blind["ambiguous"] != 0 or blind["accept"] + blind["relabel"] != 5:
        failures.append(f"decisions {blind}, expected {want} with the blind answer as accept or relabel")
    html = (Path(mwe.__file__).parent / "_review_assets").glob("*")
    external = [p.name for p in html if re.search(r"(?:src|href)\s*=\s*[\"'](?:https?:)?//", p.read_text())]
    failures += [f"{name} references something outside the package" for name in external]
    png = args.out / "review.png"
    print(
        f"progress: {progress['decided']} of {progress['total']} decided; review file {review_file}; screenshot {png}"
    )
    for f in failures:
        print("FAIL:", f, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
