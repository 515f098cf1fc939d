"""The review page in a real headless Chromium (Debian's chromium + chromium-driver, via selenium):
keyboard decisions reach the review file through the JSON API, undo and blind mode work, the
filters narrow the list, and the console stays clean. Skips where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import mwe
from mwe.reviews import REJECT_REASONS

from .review_server import serving

pytest.importorskip("starlette", reason="mwe review needs the 'review' extra (starlette, uvicorn)")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install 'mwe[dev]')")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver); none is downloaded",
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()


def _wait_text(driver: Any, element: str, pattern: str) -> str:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def seen(d: Any) -> str | bool:
        text = str(d.find_element(By.ID, element).text)
        return text if re.search(pattern, text) else False

    return str(WebDriverWait(driver, 15).until(seen, f"#{element} never matched {pattern!r}"))


def _press(driver: Any, keys: str, counts: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()
    _wait_text(driver, "counts", counts)


def test_review_page_records_keyboard_decisions(tmp_path: Path, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    ds = mwe.generate("power-seeking", n=24, model="fake", out=tmp_path / "generated")
    with serving(ds.path, "--reviewer", "web", "--sample", "8") as srv:
        browser.get(srv.url + "/")
        _wait_text(browser, "counts", r"^0 of 8 decided")
        assert "FAKE DATA" in browser.find_element(By.ID, "fake").text
        order = [i["id"] for i in srv.get("/api/items")["items"]]
        assert order[0] in browser.find_element(By.ID, "meta").text
        assert browser.find_elements(By.CSS_SELECTOR, "#choices li.key"), "the key is shown outside blind mode"

        _press(browser, "a", r"^1 of 8 decided")  # accept
        _press(browser, "l", r"^2 of 8 decided")  # relabel: two options, so the other one
        _press(browser, "r", r"^2 of 8")  # reject asks for a reason …
        _press(browser, "1", r"^3 of 8 decided")  # … the first of the list
        _press(browser, "m", r"^4 of 8 decided.*ambiguous 1")  # ambiguous
        _press(browser, "u", r"^3 of 8 decided.*ambiguous 0")  # undo takes it back
        assert order[3] in browser.find_element(By.ID, "meta").text  # and shows that item again
        _press(browser, "b", r"^3 of 8")  # blind: the key and the judges' scores are hidden
        assert not browser.find_elements(By.CSS_SELECTOR, "#choices li.key")
        assert browser.find_element(By.ID, "blind-ask").is_displayed()
        _press(browser, "A", r"^4 of 8 decided")  # the reviewer's own answer

        items = {i["id"]: i for i in srv.get("/api/items")["items"]}
        got = [items[i]["decision"] for i in order[:4]]
        assert got[0]["decision"] == "accept" and not got[0]["blind"]
        assert got[1]["decision"] == "relabel" and got[1]["new_key"] != items[order[1]]["key"]
        assert got[2]["decision"] == "reject" and got[2]["reason"] == REJECT_REASONS[0]
        blind_key = items[order[3]]["key"]
        assert got[3]["blind"] and got[3]["blind_answer"] == "A"
        assert got[3]["decision"] == ("accept" if blind_key == "A" else "relabel")

        browser.find_element(By.ID, "f-undecided").click()
        _wait_text(browser, "shown", r"^4 of 8 items shown")
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    lines = (ds.path.parent / "reviews" / "v1.web.jsonl").read_text().splitlines()
    assert len(lines) == 1 + 4 + 1 + 1  # session, four decisions, one undo, the blind decision
