"""The dashboard in headless Chromium, against output folders written by the test."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from dashboard.browser import charts, choose_keywords, line_runs, wait_for_charts, wait_until_rendered
from dashboard.demo import Demo, write_demo_output
from sentiment.config import PROJECT_ROOT
from tests.browser.conftest import serve_demo, start_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DEMO = Demo(minutes=40, spike=("python", 35))  # python, rust and weather; one alert, python at 09:35
COUNTS = "Tweets per minute"
NEGATIVE = "Negative share per minute, 95% interval (alerts marked)"


def half_written(root) -> None:
    """A batch file still being written, as the job leaves one mid-way: it must be skipped."""
    (root / "tweets" / "date=2026-11-28" / "batch-99999999.parquet").write_bytes(b"PAR1\x15\x00")
    (root / "trends" / "batch-209912312359.parquet").write_bytes(b"PAR1")


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory):
    yield from serve_demo(tmp_path_factory, DEMO, half_written)


def table_text(page, heading: str) -> str:
    """The text of the table under a subheading (Alerts, Latest tweets), or the caption in its place."""
    block = page.locator('[data-testid="stVerticalBlock"]', has=page.get_by_role("heading", name=heading)).last
    return block.inner_text()


def settled_table_text(page, heading: str, done, timeout: float = 30.0) -> str:
    """The table's text once ``done(text)`` holds (the page re-renders after its charts do, and a
    loaded machine shows the last render for a while), or after ``timeout`` seconds, as it is."""
    deadline = time.monotonic() + timeout
    text = table_text(page, heading)
    while not done(text) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        text = table_text(page, heading)
    return text


def test_page_loads_with_every_window_of_every_keyword(page, demo_url):
    page.goto(demo_url)
    found = wait_for_charts(page, "c => Object.keys(c).length == 4")
    assert found[COUNTS] == {"python": 40, "rust": 40, "weather": 40}
    assert found[NEGATIVE] == {"python": 40, "rust": 40, "weather": 40, "alert": 1}
    # 40 tweets a minute and more: one unbroken line per keyword, with its band.
    assert line_runs(page)[NEGATIVE] == {"python": 1, "rust": 1, "weather": 1}
    assert page.locator(".vega-embed svg g.band_marks > path").count() == 3
    assert page.get_by_test_id("stMetric").filter(has_text="Windows").inner_text().split() == ["Windows", "40"]
    tweets = settled_table_text(page, "Latest tweets", lambda text: "09:39" in text)
    assert "09:39" in tweets  # the newest minute's tweets are there
    assert page.get_by_test_id("stException").count() == 0
    assert page.errors == []


def test_keyword_filter_and_time_range_change_what_is_shown(page, demo_url):
    page.goto(demo_url)
    wait_for_charts(page, "c => Object.keys(c).length == 4")
    choose_keywords(page, ["rust"])
    # The charts redraw one by one: wait for both.
    rust_only = " && ".join(f"Object.keys(c['{title}'] || {{}}).join() == 'rust'" for title in (COUNTS, NEGATIVE))
    found = wait_for_charts(page, f"c => {rust_only}")
    assert found[COUNTS] == {"rust": 40}
    assert found[NEGATIVE] == {"rust": 40}  # python's alert is not rust's
    page.wait_for_function("() => !document.body.innerText.includes('python release')")
    tweets = settled_table_text(page, "Latest tweets", lambda text: "python" not in text and "weather" not in text)
    assert "rust" in tweets and "python" not in tweets and "weather" not in tweets
    assert "No alerts in this range." in table_text(page, "Alerts")

    # The page refreshes itself every second: the filter stays through a refresh.
    before = page.get_by_text("refreshed").inner_text()
    page.wait_for_function(f"() => !document.body.innerText.includes({before.split('refreshed')[1]!r})")
    assert charts(page)[COUNTS] == {"rust": 40}

    page.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="Last 15 minutes").click()
    found = wait_for_charts(page, f"c => (c['{COUNTS}'] || {{}}).rust == 15")
    assert found[COUNTS] == {"rust": 15}
    assert page.errors == []


def test_the_alert_is_listed_and_marked(page, demo_url):
    page.goto(demo_url)
    found = wait_for_charts(page, "c => Object.keys(c).length == 4")
    assert found[NEGATIVE]["alert"] == 1
    alerts = table_text(page, "Alerts")
    assert "2026-11-28 09:35:00" in alerts and "python" in alerts
    assert page.get_by_test_id("stMetric").filter(has_text="Alerts").inner_text().split() == ["Alerts", "1"]
    assert page.errors == []


def test_an_empty_output_shows_a_notice_then_the_data_as_it_arrives(page, tmp_path):
    root = tmp_path / "output"  # missing at first
    server = start_dashboard(root, tmp_path / "dashboard.log")
    url = server.url
    try:
        page.goto(url)
        page.get_by_text("No trends yet").wait_for()
        assert "No tweets yet." in table_text(page, "Latest tweets")
        (root / "trends").mkdir(parents=True)  # present but empty
        page.get_by_text("No trends yet").wait_for()

        # The job writes its first windows: the open page shows them without a reload.
        staging = tmp_path / "staging"
        trends = write_demo_output(staging, Demo(minutes=12, spike=None))
        shutil.copytree(staging / "tweets", root / "tweets")
        first = trends[trends.window_start < trends.window_start.min() + pd.Timedelta(minutes=10)]
        first.to_parquet(root / "trends" / "batch-0.parquet", index=False)
        found = wait_for_charts(page, f"c => (c['{COUNTS}'] || {{}}).python == 10")
        assert found[COUNTS] == {"python": 10, "rust": 10, "weather": 10}
        trends.drop(first.index).to_parquet(root / "trends" / "batch-1.parquet", index=False)
        found = wait_for_charts(page, f"c => (c['{COUNTS}'] || {{}}).python == 12")
        assert found[COUNTS] == {"python": 12, "rust": 12, "weather": 12}
        assert page.get_by_test_id("stException").count() == 0
        assert page.errors == []
    finally:
        server.stop()


def open_on_default_range(page, tmp_path, demo: Demo) -> tuple[str, dict[str, dict[str, int]]]:
    """Open a fresh page on ``demo``'s output, untouched: the range it opens on and its charts."""
    root = tmp_path / "output"
    write_demo_output(root, demo)
    server = start_dashboard(root, tmp_path / "dashboard.log")
    try:
        page.goto(server.url)
        found = wait_for_charts(page, "c => Object.keys(c).length == 4")
        chosen = page.get_by_role("combobox", name="Time range").input_value()
        assert page.errors == []
        return chosen, found
    finally:
        server.stop()


def test_a_finished_replay_opens_whole(page, tmp_path):
    """Tweets with 2009 times, over three hours: the first view shows every window, not the last hour."""
    replay = Demo(minutes=180, start=pd.Timestamp("2009-06-20 18:00", tz="UTC"))
    chosen, found = open_on_default_range(page, tmp_path, replay)
    assert chosen == "All"
    assert found[COUNTS] == {"python": 180, "rust": 180, "weather": 180}
    assert found[NEGATIVE]["python"] == 180


def test_a_live_stream_opens_on_its_last_hour(page, tmp_path):
    """Windows up to the clock's last minute, over two and a half hours: the first view is the last hour."""
    start = pd.Timestamp.now(tz="UTC").floor("min") - pd.Timedelta(minutes=150)
    chosen, found = open_on_default_range(page, tmp_path, Demo(minutes=150, start=start, spike=("python", 140)))
    assert chosen == "Last hour"
    assert found[COUNTS] == {"python": 60, "rust": 60, "weather": 60}


def test_the_figures_row_and_the_tables_agree_once_rendered(page, demo_url):
    page.goto(demo_url)
    shown = wait_until_rendered(page)
    assert shown.charts == 4
    assert shown.alerts_metric == shown.alert_rows == 1  # the figures row's alert is listed below
    assert shown.tweet_rows == 50
    assert page.errors == []


def test_the_screenshot_command_waits_for_every_element(tmp_path):
    """``python -m dashboard.browser`` (its own browser: this module's is busy), as the README runs it."""
    root = tmp_path / "output"
    write_demo_output(root, DEMO)
    out = tmp_path / "page.png"
    done = subprocess.run(
        [sys.executable, "-m", "dashboard.browser", "--output-root", str(root), "--out", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 charts, 1 alerts in the figures row, 1 in the alerts table, 50 latest tweets" in done.stderr
    from PIL import Image

    with Image.open(tmp_path / "page.png") as png:
        width, height = png.size
    assert width == 1400 and height > 2000  # the whole page, tables included, not only the window


def sparse_months(root) -> pd.DataFrame:
    """Trends of 1-minute windows over three months, a tweet in some, ten busy hours on one day, and
    eleven days with none: what the bundled replay looks like with the default window."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2009-04-06", tz="UTC")
    minutes = np.sort(rng.choice(90 * 24 * 60, 1200, replace=False))
    minutes = minutes[(minutes < 14 * 24 * 60) | (minutes >= 25 * 24 * 60)]
    busy = np.arange(45 * 24 * 60, 45 * 24 * 60 + 600)
    minutes = np.union1d(minutes, busy)
    n = np.where(np.isin(minutes, busy), 3, 1)
    negative = rng.binomial(n, 0.4)
    window_start = start + pd.to_timedelta(minutes, unit="min")
    trends = pd.DataFrame(
        {
            "keyword": "(no keyword)",
            "window_start": window_start,
            "window_end": window_start + pd.Timedelta(minutes=1),
            "n": n,
            "n_negative": negative,
            "n_neutral": 0,
            "n_positive": n - negative,
            "mean_p_positive": rng.uniform(0, 1, len(n)),
            "negative_share": negative / n,
        }
    )
    (root / "trends").mkdir(parents=True)
    trends.to_parquet(root / "trends" / "batch-0.parquet", index=False)
    return trends


def test_three_months_of_minutes_are_drawn_in_half_days_broken_where_empty(page, tmp_path):
    root = tmp_path / "output"
    trends = sparse_months(root)
    server = start_dashboard(root, tmp_path / "dashboard.log")
    try:
        page.goto(server.url)
        found = wait_for_charts(page, "c => Object.keys(c).length == 4")
        titles = sorted(found)
        assert "Tweets per 12 hours" in titles and "Mean positive score per 12 hours" in titles
        for title, series in found.items():
            assert all(points <= 300 for points in series.values()), title
        assert (
            sum(
                int(t.split(": ")[1].replace(",", ""))
                for t in page.locator(".vega-embed svg", has_text="Tweets per 12 hours")
                .first.locator("g.bars_marks > path")
                .evaluate_all("els => els.map(e => e.getAttribute('aria-label').match(/tweets: [0-9,]+/)[0])")
            )
            == trends["n"].sum()
        )  # every tweet counted, in bars of half a day
        score = "Mean positive score per 12 hours"
        assert found[score].get("(no keyword) (few tweets)", 0) > 0  # thin half-days: faded points
        assert line_runs(page)[score]["(no keyword)"] > 1  # the eleven empty days break the line
        assert "One point per 12 hours" in page.get_by_text("One point per").inner_text()
        assert page.errors == []
    finally:
        server.stop()
