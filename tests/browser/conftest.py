"""Fixtures of the browser tests: one real `madoguchi serve` per run (madoguchi_server.py), one
headless Debian Chromium, and a fresh browser context per test at a phone's width, with
JavaScript on or off.

    tests/browser/run.sh PATH_TO_MADOGUCHI_BINARY
"""

from __future__ import annotations

import os

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from madoguchi_server import madoguchi

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# A mid-sized phone (iPhone 12-15 class); UI.md designs for 360-414 px.
PHONE = {"width": 390, "height": 844}
# The WCAG 2.2 A/AA rules of axe-core.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
ACTION_MS = 10_000
NAVIGATION_MS = 20_000


def _binary() -> str:
    binary = os.environ.get("MADOGUCHI_BINARY")
    if not binary:
        pytest.exit("set MADOGUCHI_BINARY (tests/browser/run.sh does)", returncode=2)
    return binary


@pytest.fixture(scope="session")
def server():
    with madoguchi(_binary()) as running:
        yield running


@pytest.fixture(scope="session")
def paying_server():
    """A second server that takes fees online through the fake payment provider: its own
    database, so the fee procedures the other tests send (without a provider: paid as the
    fee note says, straight to the division) are left as they are. Started only when a
    test asks for it."""
    with madoguchi(_binary(), payments=True) as running:
        yield running


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        # Debian's Chromium: `playwright install` would download a browser, which fails here.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox"], headless=True, timeout=30_000
        )
        yield chromium
        chromium.close()


def _context(browser, server, javascript: bool):
    context = browser.new_context(
        base_url=server.base_url,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        java_script_enabled=javascript,
    )
    context.set_default_timeout(ACTION_MS)
    context.set_default_navigation_timeout(NAVIGATION_MS)
    return context


@pytest.fixture
def page(browser, server):
    context = _context(browser, server, javascript=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def paying_page(browser, paying_server):
    context = _context(browser, paying_server, javascript=True)
    yield context.new_page()
    context.close()


@pytest.fixture
def paying_page_without_js(browser, paying_server):
    context = _context(browser, paying_server, javascript=False)
    yield context.new_page()
    context.close()


@pytest.fixture
def page_without_js(browser, server):
    context = _context(browser, server, javascript=False)
    yield context.new_page()
    context.close()


_AXE = Axe()


def navigate_by(page, target):
    """Clicks `target` (a link, or a button that posts its form) and waits until the page it
    leads to has loaded; returns that page's response. A click returns once the new page starts
    loading at best: whatever reads the page next must not see the old page or a half-built one
    (axe then fails inside its own script, or checks the page before)."""
    with page.expect_navigation() as navigation:
        target.click()
    return navigation.value


def axe_violations(page) -> tuple[int, str]:
    """axe-core's WCAG 2.2 A/AA violations on the page as it is now: (count, readable report).

    A click that navigates returns once the new document is committed, which can be before it
    has any element (axe then fails on a null documentElement): wait for it to load first."""
    page.wait_for_load_state("load")
    results = _AXE.run(
        page,
        options={"runOnly": {"type": "tag", "values": WCAG_TAGS}, "resultTypes": ["violations"]},
    )
    return results.violations_count, results.generate_report()
