"""Debian's headless Chromium driven by Selenium through chromedriver, for the `browser` tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LAPTOP_WIDTH = 1366

BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason=f"browser tests need {CHROMIUM} and {CHROMEDRIVER}: run `make system-deps` "
        "(installs Debian's chromium and chromium-driver)",
    ),
]
"""The `pytestmark` of a browser test module."""


@contextmanager
def chromium() -> Iterator[WebDriver]:
    """A headless Chromium at laptop width that keeps the page's console log."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={LAPTOP_WIDTH},900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: WebDriver) -> list[str]:
    """The page's console messages since the last call (CSP violations land here)."""
    return [str(entry["message"]) for entry in driver.get_log("browser")]


def screenshot(driver: WebDriver, folder: Path, name: str) -> Path:
    """Save what the browser shows as `folder/name.png` (a test artifact) and print where."""
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


__all__ = ["BROWSER_MARKS", "CHROMEDRIVER", "CHROMIUM", "LAPTOP_WIDTH", "chromium", "console_errors", "screenshot"]
