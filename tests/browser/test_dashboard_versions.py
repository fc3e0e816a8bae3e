"""A keyword's trend split by model version, in headless Chromium, on a demo output whose model was
swapped mid-stream."""

from __future__ import annotations

import pytest

from dashboard.browser import choose_keywords, line_runs, wait_for_charts
from dashboard.demo import Demo, make_tweets
from tests.browser.conftest import serve_demo

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SWAP = Demo(minutes=40, swap_at=25)  # python, rust and weather; demo until 09:25, demo-2 from then on
SCORE = "python: mean positive score per minute, by model version"
NEGATIVE = "python: negative share per minute, by model version, 95% interval"
HINT = "Choose one keyword to see its trend split by the model versions that scored it."


@pytest.fixture(scope="module")
def swapped_url(tmp_path_factory):
    yield from serve_demo(tmp_path_factory, SWAP)


def chart(page, title: str):
    """The SVG of the chart with this title."""
    return page.locator(".vega-embed svg", has=page.locator(".role-title-text", has_text=title)).first


def svg_texts(svg, selector: str) -> list[str]:
    """The text of the SVG elements under ``svg`` that ``selector`` finds, in order."""
    return svg.locator(selector).evaluate_all("els => els.map(e => e.textContent)")


def test_one_keyword_is_split_by_version_with_the_takeover_marked(page, swapped_url):
    tweets = make_tweets(SWAP)
    first = tweets.loc[(tweets.keyword == "python") & (tweets.model_version == "demo-2"), "created_at"].min()
    page.goto(swapped_url)
    wait_for_charts(page, "c => Object.keys(c).length == 4")  # every keyword: no split, a hint instead
    page.get_by_text(HINT).wait_for()
    choose_keywords(page, ["python"])
    found = wait_for_charts(page, f"c => Object.keys(c['{SCORE}'] || {{}}).length == 2 && c['{NEGATIVE}']")
    assert found[SCORE] == found[NEGATIVE] == {"demo": 25, "demo-2": 15}  # a minute each, counted once
    assert line_runs(page)[SCORE] == {"demo": 1, "demo-2": 1}
    for title in (SCORE, NEGATIVE):
        svg = chart(page, title)
        assert svg_texts(svg, ".role-legend-label text") == ["demo", "demo-2"]
        strokes = svg.locator("g.line_marks > path").evaluate_all("els => els.map(e => e.getAttribute('stroke'))")
        assert len(set(strokes)) == 2  # a colour per version
        rules = svg.locator("g.takeovers_marks > line")
        assert rules.count() == 1
        assert f"first tweet: {first:%Y-%m-%d %H:%M:%S} UTC" in rules.first.get_attribute("aria-label")
        assert svg_texts(svg, "g.takeover_names_marks text") == ["demo-2 takes over"]
        assert "09:25" in svg_texts(svg, ".role-axis-label text")  # the time axis is drawn, the rule on it
    caption = page.get_by_text("python's tweets by the model version").inner_text()
    assert f"demo first, then demo-2 from {first:%Y-%m-%d %H:%M:%S} UTC" in caption
    assert page.get_by_test_id("stException").count() == 0
    assert page.errors == []


def test_a_range_scored_by_one_version_says_so_in_one_line(page, swapped_url):
    page.goto(swapped_url)
    wait_for_charts(page, "c => Object.keys(c).length == 4")
    choose_keywords(page, ["python"])
    wait_for_charts(page, f"c => c['{SCORE}']")
    page.get_by_test_id("stSelectbox").click()
    page.get_by_role("option", name="Last 15 minutes").click()  # 09:25 to 09:40: demo-2 alone
    page.get_by_text("Every tweet of python in this range was scored by model version demo-2").wait_for()
    found = wait_for_charts(page, f"c => !c['{SCORE}'] && Object.keys(c).length == 4")
    assert not any("by model version" in title for title in found)
    assert page.errors == []
