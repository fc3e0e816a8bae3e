"""The dashboard in Debian's headless Chromium: start a server, open a page, read its charts, take a screenshot.

The browser tests, the dashboard benchmark and the screenshot in the README use it. Playwright drives
``/usr/bin/chromium`` (Debian's ``chromium`` package; ``TWEETSENT_CHROMIUM`` names another binary):
it never downloads a browser of its own.

Usage: python -m dashboard.browser --output-root DIR --out docs/dashboard.png [--keywords python rust] [--label-out PNG]
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sentiment.config import PROJECT_ROOT
from sentiment.logs import setup_logging

log = logging.getLogger("dashboard.browser")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Every chart drawn on the page by its title (Vega-Lite, drawn as SVG: dashboard.charts): how many
# marks each series has, read from the marks themselves. A series is a keyword, or a model version on
# a keyword's split by version (its bars or points), "NAME (few tweets)" (its faded points) or "alert"
# (the alert crosses).
CHARTS_JS = """() => Object.fromEntries([...document.querySelectorAll('.vega-embed svg')]
    .filter(svg => svg.querySelector('.role-title-text'))
    .map(svg => {
        const series = {};
        const add = name => { series[name] = (series[name] || 0) + 1; };
        for (const g of svg.querySelectorAll('g.bars_marks, g.points_marks, g.few_marks, g.alerts_marks')) {
            for (const mark of g.children) {
                const label = mark.getAttribute('aria-label') || '';
                const keyword = (label.match(/(?:keyword|model version): ([^;]*)/) || [])[1];
                if (g.classList.contains('alerts_marks')) add('alert');
                else if (g.classList.contains('few_marks')) add(keyword + ' (few tweets)');
                else add(keyword);
            }
        }
        return [svg.querySelector('.role-title-text').textContent, series];
    }))"""
# The line pieces of each keyword (or model version) in each chart: a line breaks where buckets have too few tweets.
LINES_JS = """() => Object.fromEntries([...document.querySelectorAll('.vega-embed svg')]
    .filter(svg => svg.querySelector('.role-title-text'))
    .map(svg => {
        const runs = {};
        for (const path of svg.querySelectorAll('g.line_marks > path')) {
            const label = path.getAttribute('aria-label') || '';
            const keyword = (label.match(/(?:keyword|model version): ([^;]*)/) || [])[1];
            runs[keyword] = (runs[keyword] || 0) + 1;
        }
        return [svg.querySelector('.role-title-text').textContent, runs];
    }))"""
# What the page shows once every element has rendered: the charts drawn, each table with its rows
# (or the caption said in its place), the figures row; null while a part is still a placeholder,
# stale from the previous run, or not there yet.
RENDERED_JS = """() => {
    if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"], [data-stale="true"]'))
        return null;
    const empty = document.body.innerText.includes('No trends yet');
    const drawn = [...document.querySelectorAll('.vega-embed svg')]
        .filter(svg => svg.querySelector('.role-title-text')).length;
    if (!empty && drawn < 4) return null;
    const sections = {};
    let section = null;
    for (const el of document.querySelectorAll('h3, table.ts-table, [data-testid="stCaptionContainer"]')) {
        if (el.tagName == 'H3') { section = el.innerText.trim(); sections[section] = null; continue; }
        if (!section || sections[section] !== null) continue;
        sections[section] = el.matches('table')
            ? {rows: el.querySelectorAll('tbody tr').length, text: el.innerText}
            : {rows: 0, text: el.innerText.trim()};
    }
    const alerts = sections['Alerts'], tweets = sections['Latest tweets'];
    if (!alerts || !tweets) return null;
    if (alerts.rows == 0 && !alerts.text.startsWith('No alerts')) return null;
    if (tweets.rows == 0 && !tweets.text.startsWith('No tweets')) return null;
    const metric = name => {
        const el = [...document.querySelectorAll('[data-testid="stMetric"]')].find(m => m.innerText.startsWith(name));
        return el ? Number(el.querySelector('[data-testid="stMetricValue"]').innerText.replace(/,/g, '')) : null;
    };
    return {charts: drawn, alerts_metric: metric('Alerts'), alert_rows: alerts.rows, tweet_rows: tweets.rows};
}"""


@dataclass(frozen=True)
class Rendered:
    """What a rendered page shows: charts drawn, the Alerts figure and the rows of the two tables."""

    charts: int
    alerts_metric: int | None  # None when there are no trends yet (no figures row)
    alert_rows: int
    tweet_rows: int


def wait_until_rendered(page, timeout_ms: float = 60_000) -> Rendered:
    """Wait until every element of the page has rendered (see :data:`RENDERED_JS`); what it shows."""
    handle = page.wait_for_function(RENDERED_JS, timeout=timeout_ms)
    return Rendered(**handle.json_value())


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> Path:
    """The Chromium binary to drive.

    Raises:
        FileNotFoundError: naming the package to install, when it is missing.
    """
    path = Path(os.environ.get("TWEETSENT_CHROMIUM", "/usr/bin/chromium"))
    if not path.exists():
        raise FileNotFoundError(
            f"Chromium not found at {path}: install Debian's package (apt-get install -y chromium; `make test` "
            "does) or point TWEETSENT_CHROMIUM at a Chromium binary"
        )
    return path


def launch_chromium(playwright):
    """A headless Chromium from Debian's package, through a started ``sync_playwright()``."""
    return playwright.chromium.launch(executable_path=str(chromium_path()), args=CHROMIUM_ARGS)


class DashboardServer:
    """``python -m dashboard`` on a free loopback port, as a child process; a context manager."""

    def __init__(
        self,
        output_root: str | Path,
        log_file: str | Path,
        refresh_seconds: float = 1.0,
        project_root: str | Path = PROJECT_ROOT,
    ) -> None:
        self.output_root = Path(output_root)
        self.project_root = Path(project_root)  # the checkout whose dashboard runs (another, to compare)
        self.log_file = Path(log_file)
        self.refresh_seconds = refresh_seconds
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> DashboardServer:
        """Start the server and wait for its health check.

        Raises:
            RuntimeError: with the server's log, if it exits or does not answer within ``timeout``.
        """
        with self.log_file.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dashboard", "--output-root", str(self.output_root), "--port", str(self.port)]
                + ["--refresh-seconds", str(self.refresh_seconds)],
                cwd=self.project_root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the dashboard exited with {self.proc.returncode}:\n{self.log_file.read_text()}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.1)  # polling for readiness, bounded by the deadline
        self.stop()
        raise RuntimeError(
            f"the dashboard did not answer on {self.url} in {timeout:.0f} s:\n{self.log_file.read_text()}"
        )

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def rss_mib(self) -> float:
        """Resident memory of the server process, MiB."""
        return rss_mib(self.proc.pid)

    def __enter__(self) -> DashboardServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process, from /proc, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def charts(page) -> dict[str, dict[str, int]]:
    """The page's charts: ``{title: {trace name: number of points}}``."""
    return page.evaluate(CHARTS_JS)


def line_runs(page) -> dict[str, dict[str, int]]:
    """The page's line charts: ``{title: {keyword: pieces of its line}}``."""
    return page.evaluate(LINES_JS)


def wait_for_charts(page, predicate_js: str, timeout_ms: float = 30_000) -> dict[str, dict[str, int]]:
    """Wait (polled in the browser) until the JS predicate holds of :func:`charts`; return them."""
    page.wait_for_function(f"() => {{ const c = ({CHARTS_JS})(); return ({predicate_js})(c); }}", timeout=timeout_ms)
    return charts(page)


def choose_keywords(page, keywords: list[str], attempts: int = 3) -> None:
    """Pick keywords in the page's keyword filter, by clicking them in its list.

    A refresh of the page can land while the list is open and close it: a keyword is picked again
    until its tag shows, up to ``attempts`` times.

    Raises:
        RuntimeError: if a keyword could not be picked.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    box = page.get_by_test_id("stMultiSelect")
    chosen: list[str] = []
    for keyword in keywords:
        for _ in range(attempts):
            try:
                box.click()
                page.get_by_role("option", name=keyword, exact=True).click(timeout=3_000)
                page.keyboard.press("Escape")
                expected = sorted([*chosen, keyword])
                page.wait_for_function(
                    """([expected]) => {
                        const box = document.querySelector('[data-testid="stMultiSelect"]');
                        const tags = [...box.querySelectorAll('[data-tag]')].map(t => t.innerText.trim()).sort();
                        return JSON.stringify(tags) == JSON.stringify(expected);
                    }""",
                    arg=[expected],
                    timeout=3_000,
                )
                chosen.append(keyword)
                break
            except PlaywrightTimeout:
                page.keyboard.press("Escape")
        else:
            raise RuntimeError(f"could not pick {keyword!r} in the keyword filter after {attempts} attempts")


def _palette(png: Path) -> None:
    """Rewrite a screenshot with a 256-colour palette: a third of the bytes, the same to the eye."""
    from PIL import Image

    with Image.open(png) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(png, optimize=True)


def screenshot(
    output_root: str | Path,
    out: str | Path,
    keywords: list[str] | None = None,
    label_out: str | Path | None = None,
) -> Rendered:
    """Open the dashboard of ``output_root`` and save a screenshot of the whole page once every
    element has rendered (:func:`wait_until_rendered`); what the picture shows. With
    ``label_out``, a picture of the labelling page too (once its first tweet is shown).

    The page is served with a refresh slower than the screenshot takes, so that no refresh can
    leave part of the picture stale.
    """
    from playwright.sync_api import sync_playwright

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with (
        DashboardServer(output_root, out.with_suffix(".log"), refresh_seconds=3600) as server,
        sync_playwright() as p,
    ):
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(server.url)
        wait_for_charts(page, "c => Object.keys(c).length == 4")
        if keywords:
            choose_keywords(page, keywords)
            counts = "Object.keys(c).find(t => t.startsWith('Tweets per'))"
            wait_for_charts(page, f"c => Object.keys(c[{counts}] || {{}}).length == {len(keywords)}")
        page.wait_for_load_state("networkidle")
        wait_until_rendered(page)
        # Streamlit scrolls inside its own container, so a "full page" is only the window: make the
        # window as tall as what it holds, then wait for the charts to settle at that size.
        height = page.evaluate(
            '() => Math.max(...[...document.querySelectorAll(\'[data-testid="stMain"], '
            '[data-testid="stMainBlockContainer"]\')].map(el => el.scrollHeight), 600)'
        )
        page.set_viewport_size({"width": 1400, "height": int(height) + 40})
        page.wait_for_timeout(500)  # the charts take the new width
        shown = wait_until_rendered(page)
        page.screenshot(path=str(out), full_page=True)
        if label_out is not None:
            page.set_viewport_size({"width": 1400, "height": 900})
            page.goto(server.url + "/label")
            page.get_by_test_id("label-tweet").wait_for()
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(500)
            page.screenshot(path=str(label_out), full_page=True)
        browser.close()
    for png in (out, label_out):
        if png is not None:
            _palette(Path(png))
    out.with_suffix(".log").unlink(missing_ok=True)
    return shown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.browser", description="A screenshot of the dashboard.")
    parser.add_argument("--output-root", default="output", help="the pipeline's output folder (default: output)")
    parser.add_argument("--out", default="docs/dashboard.png", help="the PNG to write (default: docs/dashboard.png)")
    parser.add_argument("--keywords", nargs="*", default=None, help="pick these in the keyword filter first")
    parser.add_argument("--label-out", default=None, help="also a PNG of the labelling page")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        shown = screenshot(args.output_root, args.out, args.keywords, args.label_out)
    except (FileNotFoundError, RuntimeError) as e:
        log.error("%s", e)
        return 1
    log.info(
        "wrote %s: %d charts, %s alerts in the figures row, %d in the alerts table, %d latest tweets",
        args.out,
        shown.charts,
        shown.alerts_metric,
        shown.alert_rows,
        shown.tweet_rows,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
