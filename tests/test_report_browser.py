"""The HTML report in a real browser (issue 17, item 3): Debian's chromium, driven by selenium
through Debian's chromedriver (the driver that matches the browser; nothing is downloaded).

The page must load with no console error, every figure must decode (``naturalWidth > 0``), and
the screenshots of the page and of each figure must not be blank (many distinct colours, a fair
share of non-background pixels).  A control page with a broken image and a console error shows
that these checks can fail.

Skipped, saying why, only when no chromium or chromedriver is installed; ``.ci/run`` installs
both and sets ``CRISIS_REQUIRE_BROWSER=1``, which turns that skip into a failure.
"""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "nato-baltic-2024.toml"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1280, 1600)
# a screenshot is "not blank" with at least this many distinct colours and this share of pixels
# away from the page background (white): a rendered page of text, tables and figures has
# thousands of colours (anti-aliasing); a blank or single-colour page has one
MIN_COLOURS = 64
MIN_INKED_SHARE = 0.01


def _browser() -> tuple[str, str] | None:
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def driver():
    found = _browser()
    if found is None:
        why = ("no chromium and chromedriver on PATH (Debian: apt-get install chromium "
               "chromium-driver; .ci/run installs them)")
        if os.environ.get("CRISIS_REQUIRE_BROWSER") == "1":
            pytest.fail(f"CRISIS_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = found
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={WINDOW[0]},{WINDOW[1]}", "--hide-scrollbars"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    session = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    session.set_page_load_timeout(60)
    try:
        yield session
    finally:
        session.quit()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from engine import api
    from engine.present.report import write_report

    out = tmp_path_factory.mktemp("browser") / "run"
    api.run(CONFIG, trials=50_000, seed=3, out=out)  # threads: all, the default
    return write_report(out)


def _open(driver, path: Path) -> None:
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(path.resolve().as_uri())
    state = driver.execute_script("return document.readyState")
    assert state == "complete", state


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _decoded_images(driver) -> list[tuple[str, int]]:
    """(alt, naturalWidth) of every <img> once decoded; -1 where decoding failed."""
    return driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        Promise.all(Array.from(document.images).map(img => img.decode().then(
            () => [img.alt, img.naturalWidth], () => [img.alt, -1]))).then(done);
    """)


def _not_blank(png: bytes) -> tuple[int, float]:
    """(distinct colours, share of pixels that are not white) of a PNG screenshot."""
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).reshape(-1, 3)
    colours = len(np.unique(pixels.astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1],
                                                                dtype=np.uint32)))
    inked = float(np.mean(np.any(pixels < 245, axis=1)))
    return colours, inked


def test_report_loads_decodes_and_renders(driver, report):
    from selenium.webdriver.common.by import By

    from engine.present.plots import RUN_FIGURES

    _open(driver, report)
    assert _console_errors(driver) == []
    images = _decoded_images(driver)
    assert len(images) == len(RUN_FIGURES)
    assert all(width > 0 for _, width in images), images
    reading = driver.find_element(By.CSS_SELECTOR, ".reading").text
    assert reading.startswith("Across 50,000 trials, aggression was deterred in")
    assert "rationale" in driver.find_element(By.CSS_SELECTOR, "table.assumptions").text
    colours, inked = _not_blank(driver.get_screenshot_as_png())
    assert colours >= MIN_COLOURS and inked >= MIN_INKED_SHARE, (colours, inked)
    for figure in driver.find_elements(By.CSS_SELECTOR, "figure"):
        driver.execute_script("arguments[0].scrollIntoView()", figure)
        image = figure.find_element(By.TAG_NAME, "img")
        assert image.size["width"] > 300 and image.size["height"] > 150, image.size
        colours, inked = _not_blank(image.screenshot_as_png)
        name = figure.get_attribute("id")
        assert colours >= MIN_COLOURS and inked >= MIN_INKED_SHARE, (name, colours, inked)


def test_the_checks_catch_a_broken_page(driver, tmp_path):
    """The same checks on a page with a console error, an image that cannot decode, then
    nothing drawn: each of them fails."""
    broken = base64.b64encode(b"<svg xmlns='http://www.w3.org/2000/svg'><unclosed").decode()
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body style='background: white'>"
                    f"<img alt='broken' src='data:image/svg+xml;base64,{broken}'>"
                    "<script>console.error('deliberate failure')</script></body></html>")
    _open(driver, page)
    assert any("deliberate failure" in m for m in _console_errors(driver))
    assert _decoded_images(driver) == [["broken", -1]]
    driver.execute_script("document.body.innerHTML = ''")  # nothing drawn: a blank page
    colours, inked = _not_blank(driver.get_screenshot_as_png())
    assert colours < MIN_COLOURS and inked < MIN_INKED_SHARE
