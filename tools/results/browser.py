"""Open a report in a real browser (headless Chromium through Selenium and ChromeDriver) and say what it shows.

A page can be valid HTML and still be broken for its reader: an image whose file is missing or unreadable, a
table that never rendered. Only a browser knows, so this asks one: after the page has loaded, how many images
it has and which of them failed to decode, how many tables and rows, and a screenshot of the whole page.

Plumbing only (it starts processes); what a good page must contain is asserted by the tests and by the
callers. Chromium runs as root here, so without its sandbox, with a fresh profile that is removed afterwards,
and with its background networking off (the machine's network is closed, and a report never fetches anything).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Debian's package first; then the names Chrome and Ubuntu's Chromium use (a hosted CI runner has Chrome).
BROWSERS = ("chromium", "google-chrome", "google-chrome-stable", "chromium-browser")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-quic",
         "--hide-scrollbars")
WIDTH = 1200
MAX_HEIGHT = 12000  # a page longer than this is cut in the screenshot, not in the check
LOAD_TIMEOUT_S = 30

# Read in the page once everything has loaded: an image failed when it finished without a decodable picture.
INSPECT = """
const imgs = Array.from(document.images);
return {
  title: document.title,
  images: imgs.length,
  broken: imgs.filter(i => !i.complete || i.naturalWidth === 0).map(i => i.getAttribute('src')),
  tables: document.querySelectorAll('table').length,
  rows: document.querySelectorAll('tr').length,
  height: Math.max(document.body.scrollHeight, document.documentElement.scrollHeight),
};
"""


class BrowserUnavailable(RuntimeError):
    """No Chromium, ChromeDriver or Selenium here; the message says which and how to get it."""


@dataclass(frozen=True)
class PageCheck:
    """What the browser saw on one page."""

    title: str
    images: int
    broken: tuple[str, ...]  # src of every image that did not load
    tables: int
    rows: int

    @property
    def ok(self) -> bool:
        return not self.broken and self.tables > 0

    def describe(self) -> str:
        what = f"{self.images} images, {self.tables} tables ({self.rows} rows)"
        return what + (f"; images that did not load: {', '.join(self.broken)}" if self.broken else "")


def _find() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, BROWSERS) if p), None)
    driver = shutil.which("chromedriver") or shutil.which("chromedriver", path=os.environ.get("CHROMEWEBDRIVER"))
    if not browser or not driver:
        raise BrowserUnavailable(f"no {'Chromium' if not browser else 'ChromeDriver'} on this machine; "
                                 "'sudo make setup' installs Debian's chromium and chromium-driver")
    return browser, driver


def check(page: Path, screenshot: Path | None = None) -> PageCheck:
    """Load ``page`` from disk, inspect it, and save a full-page PNG to ``screenshot`` if given."""
    return check_all([(page, screenshot)])[0]


def check_all(pages: Sequence[tuple[Path, Path | None]]) -> list[PageCheck]:
    """:func:`check` for each (page, screenshot), in one browser: starting Chromium costs seconds, a page
    a fraction of one."""
    browser, driver_path = _find()
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError as exc:
        raise BrowserUnavailable("Selenium is missing; 'sudo make setup' installs Debian's python3-selenium") \
            from exc
    profile = tempfile.mkdtemp(prefix="multi6lab-chromium-")
    options: Any = webdriver.ChromeOptions()  # Selenium's options are untyped
    options.binary_location = browser
    for flag in (*FLAGS, f"--user-data-dir={profile}", f"--window-size={WIDTH},900"):
        options.add_argument(flag)
    driver: Any = None
    out: list[PageCheck] = []
    try:
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
        driver.set_page_load_timeout(LOAD_TIMEOUT_S)
        for page, screenshot in pages:
            driver.set_window_size(WIDTH, 900)
            driver.get(page.resolve().as_uri())  # returns once the load event has fired: images are settled
            seen = driver.execute_script(INSPECT)
            if screenshot is not None:
                driver.set_window_size(WIDTH, min(int(seen["height"]) + 40, MAX_HEIGHT))
                driver.get_screenshot_as_file(str(screenshot))
            out.append(PageCheck(str(seen["title"]), int(seen["images"]), tuple(map(str, seen["broken"])),
                                 int(seen["tables"]), int(seen["rows"])))
        return out
    except WebDriverException as exc:  # the browser or its driver would not start, or died: say so in a line
        first = (exc.msg or type(exc).__name__).strip().splitlines()[0]
        raise BrowserUnavailable(f"Chromium failed on {pages[min(len(out), len(pages) - 1)][0]}: {first}") from None
    finally:
        if driver is not None:
            driver.quit()  # ends ChromeDriver and the browser it started
        shutil.rmtree(profile, ignore_errors=True)
