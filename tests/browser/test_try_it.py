"""The Try it page in headless Chromium, against the real service on loopback: typed tweets and an
uploaded CSV come back labelled, with the three probabilities and the model version."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.demo import Demo, write_demo_output
from tests.browser.conftest import start_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def dashboard_for(tmp_path, monkeypatch, service: str):
    root = tmp_path / "output"
    write_demo_output(root, Demo(minutes=3, spike=None))
    monkeypatch.setenv("TWEETSENT_STREAM__SERVICE_URL", service)  # what the job scores with
    return start_dashboard(root, tmp_path / "dashboard.log")


def scored_rows(page) -> pd.DataFrame:
    """The table of scored tweets as the page shows it."""
    table = page.locator("table[data-table=scored]")
    table.wait_for()
    head, rows = table.evaluate(
        """t => [[...t.querySelectorAll('thead th')].map(c => c.innerText),
                 [...t.querySelectorAll('tbody tr')].map(r => [...r.querySelectorAll('td')].map(c => c.innerText))]"""
    )
    return pd.DataFrame(rows, columns=head)


def test_typed_and_uploaded_tweets_come_back_labelled(page, tmp_path, monkeypatch, service_url):
    server = dashboard_for(tmp_path, monkeypatch, service_url)
    try:
        page.goto(server.url + "/try")
        page.get_by_label("Tweets, one per line").fill(
            "what a lovely day, thank you all\nworst service ever, never again"
        )
        page.get_by_role("button", name="Score").click()
        typed = scored_rows(page)
        assert list(typed["sentiment"]) == ["Positive", "Negative"]
        assert {"probability_negative", "probability_neutral", "probability_positive"} <= set(typed.columns)
        assert typed["model_version"].str.contains("@").all()

        upload = tmp_path / "mine.csv"
        pd.DataFrame({"id": ["a", "b", "c"], "text": ["love it", "hate it", "the bus leaves at nine"]}).to_csv(
            upload, index=False
        )
        page.get_by_label("Tweets, one per line").fill("")
        page.locator("input[type=file]").set_input_files(str(upload))
        page.get_by_text("mine.csv: 3 tweets to score").wait_for()  # the server has the file
        page.get_by_role("button", name="Score").click()
        page.wait_for_function(
            "() => document.querySelector('table[data-table=scored]')?.innerText.includes('love it')"
        )
        uploaded = scored_rows(page)
        assert list(uploaded["id"]) == ["a", "b", "c"] and list(uploaded["text"])[0] == "love it"
        with page.expect_download() as download:
            page.get_by_role("button", name="Download as CSV").click()
        back = pd.read_csv(download.value.path())
        assert download.value.suggested_filename == "mine-scored.csv"
        assert list(back.columns[:2]) == ["id", "text"] and len(back) == 3
        assert {"sentiment", "p_positive", "model_version"} <= set(back.columns)
        assert page.errors == []
    finally:
        server.stop()


def test_a_service_that_does_not_answer_and_a_csv_without_text_are_said_plainly(page, tmp_path, monkeypatch):
    server = dashboard_for(tmp_path, monkeypatch, "http://127.0.0.1:9")  # nothing listens on port 9
    try:
        page.goto(server.url + "/try")
        page.get_by_role("button", name="Score").click()
        page.get_by_text("type or paste a tweet").wait_for()
        page.get_by_label("Tweets, one per line").fill("hello")
        page.get_by_role("button", name="Score").click()
        page.get_by_text("does not answer").wait_for()
        bad = tmp_path / "bad.csv"
        bad.write_text("tweet\nhello\n")
        page.locator("input[type=file]").set_input_files(str(bad))
        page.get_by_text("bad.csv has no 'text' column (its columns: tweet)").wait_for()  # said on upload
        page.get_by_role("button", name="Score").click()
        page.get_by_text("has no 'text' column").wait_for()
        assert page.get_by_text("has no 'text' column").count() == 1  # said once; Score scored nothing
        assert page.errors == []
    finally:
        server.stop()
