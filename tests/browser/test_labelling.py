"""The labelling page in headless Chromium: labels taken by click and by key land in the labels table."""

from __future__ import annotations

import pandas as pd
import pytest

from dashboard.demo import Demo, write_demo_output
from sentiment.labelled import LabelsTable
from tests.browser.conftest import start_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "output"
    write_demo_output(root, Demo(minutes=10, spike=None))
    server = start_dashboard(root, tmp_path / "dashboard.log")
    yield root, server.url
    server.stop()


def shown(page) -> tuple[str, str]:
    """The tweet being labelled: its id and text."""
    tweet = page.get_by_test_id("label-tweet")
    return tweet.get_attribute("data-id"), tweet.inner_text().strip()


def label_and_wait(page, action) -> tuple[str, str]:
    """Label the tweet shown (``action`` clicks or presses a key); what was shown, once the next is."""
    before = shown(page)
    action()
    page.wait_for_function(
        "id => document.querySelector('[data-testid=label-tweet]')?.getAttribute('data-id') != id", arg=before[0]
    )
    return before


def test_labels_by_click_and_key_are_in_the_table_and_never_shown_twice(page, served):
    root, url = served
    page.goto(url + "/label")
    page.get_by_test_id("label-tweet").wait_for()
    first = label_and_wait(page, lambda: page.get_by_role("button", name="Positive").click())
    second = label_and_wait(page, lambda: page.keyboard.press("1"))  # Negative, by key
    third = label_and_wait(page, lambda: page.keyboard.press("0"))  # Skip

    labels = LabelsTable(root / "labels").read()
    assert list(labels["label"]) == ["Positive", "Negative", "Skip"]
    assert list(zip(labels["id"], labels["text"], strict=True)) == [first, second, third]
    assert set(labels["keyword"]) == {"python"} and set(labels["model_version"]) == {"demo"}
    assert set(labels["drawn"]) <= {"random", "uncertain"}
    assert pd.read_parquet(root / "labels")["id"].nunique() == 3
    done = {first[0], second[0], third[0]}
    assert shown(page)[0] not in done

    # A new tab draws from what is left: none of the labelled tweets comes back, and the page
    # counts them against the model.
    page.goto(url + "/label")
    page.get_by_test_id("label-tweet").wait_for()
    assert shown(page)[0] not in done
    page.get_by_text("3 labels in all").wait_for()
    matrix = page.locator("table[data-table=confusion] tbody tr")
    assert matrix.count() == 3
    assert page.errors == []


def test_the_overview_is_the_first_page_and_links_to_labelling(page, served):
    _, url = served
    page.goto(url)
    page.get_by_test_id("stMetric").first.wait_for()
    page.get_by_role("link", name="Label").click()
    page.get_by_test_id("label-tweet").wait_for()
    assert page.url.endswith("/label")
    assert page.errors == []


def test_a_model_is_rolled_out_from_the_page_to_the_running_service(page, tmp_path, monkeypatch):
    """A real service on loopback (the 3-layer, fp32): the page swaps it to the 6-layer."""
    import requests

    from harness.processes import start_service, stop_process, wait_for_service
    from model_api.model.locations import FAST_MODEL_DIR, FULL_MODEL_DIR

    settings = {
        "TWEETSENT_SERVICE__MODEL": str(FAST_MODEL_DIR),
        "TWEETSENT_SERVICE__PRECISION": "fp32",
        "TWEETSENT_SERVICE__WORKERS": "1",
        "TWEETSENT_SERVICE__ENGINE_PROCESSES": "1",
    }
    log = tmp_path / "service.log"
    process, service = start_service(log, settings)
    try:
        wait_for_service(process, service, log, timeout=120)
        before = requests.get(service + "/model", timeout=10).json()["model_version"]
        root = tmp_path / "output"
        write_demo_output(root, Demo(minutes=3, spike=None))
        monkeypatch.setenv("TWEETSENT_STREAM__SERVICE_URL", service)
        server = start_dashboard(root, tmp_path / "dashboard.log")
        try:
            page.goto(server.url + "/label")
            page.get_by_text("Roll out a model").click()
            page.get_by_label("Model directory").fill("/nowhere/model")
            page.get_by_role("button", name="Roll out").click()
            page.get_by_text("is not a model directory on this machine").wait_for()
            page.get_by_label("Model directory").fill(str(FULL_MODEL_DIR))
            page.get_by_role("button", name="Roll out").click()
            page.get_by_text("all 1 replicas serve it").wait_for(timeout=120_000)
            after = requests.get(service + "/model", timeout=10).json()["model_version"]
            assert after != before and after.startswith("MiniLM-L6-H384")
            assert page.errors == []
        finally:
            server.stop()
    finally:
        stop_process(process)


def test_no_roll_out_where_the_admin_route_would_not_answer(page, tmp_path, monkeypatch):
    from dashboard.labelling import admin_allowed

    assert admin_allowed("http://127.0.0.1:8000", "") and admin_allowed("http://10.0.0.5:8000", "secret")
    assert not admin_allowed("http://10.0.0.5:8000", "") and not admin_allowed(
        "http://127.0.0.1:1,http://10.0.0.5:2", ""
    )
    root = tmp_path / "output"
    write_demo_output(root, Demo(minutes=3, spike=None))
    monkeypatch.setenv("TWEETSENT_STREAM__SERVICE_URL", "http://10.0.0.5:8000")  # another machine, no token
    monkeypatch.delenv("TWEETSENT_SERVICE_TOKEN", raising=False)
    server = start_dashboard(root, tmp_path / "dashboard.log")
    try:
        page.goto(server.url + "/label")
        page.get_by_test_id("label-tweet").wait_for()
        assert page.get_by_text("Roll out a model").count() == 0
    finally:
        server.stop()
