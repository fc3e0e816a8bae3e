"""One headless Chromium (Debian's package) for the browser tests, and a fresh page per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dashboard.browser import DashboardServer, launch_chromium
from dashboard.demo import Demo, write_demo_output


def start_dashboard(output_root: Path, log_file: Path) -> DashboardServer:
    """``python -m dashboard`` on a free loopback port, refreshing every second; fails the test if it cannot."""
    try:
        return DashboardServer(output_root, log_file, refresh_seconds=1.0).start()
    except RuntimeError as e:
        pytest.fail(str(e))


def serve_demo(tmp_path_factory, demo: Demo, before_start: Callable[[Path], None] | None = None) -> Iterator[str]:
    """A dashboard over a demo output written for one test module (``before_start`` may add to the
    folder first): yields its URL, stops it after."""
    root = tmp_path_factory.mktemp("output")
    write_demo_output(root, demo)
    if before_start is not None:
        before_start(root)
    server = start_dashboard(root, root.parent / "dashboard.log")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    """Chromium for one test module, closed after it rather than held for the rest of the suite."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            browser = launch_chromium(p)
        except FileNotFoundError as e:
            pytest.fail(str(e))
        yield browser
        browser.close()


@pytest.fixture
def page(browser) -> Iterator:
    """A fresh page (a new dashboard session) that records the page's uncaught errors in ``page.errors``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()
