"""Headless Chromium for tests, through Playwright, on the machine's own browser.

Debian's ``chromium`` (installed by ``make system-deps``), never a browser Playwright
downloads: ``playwright install`` fetches builds from the internet, which neither a
developer's machine nor CI may do. The flags keep the browser from talking to anything
but the pages a test opens (no component updates, sync or background fetches).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from playwright.sync_api import Browser, sync_playwright

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium, closed on leaving."""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()
