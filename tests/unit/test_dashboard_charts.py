import argparse

import pandas as pd
import pytest

from dashboard import charts
from dashboard.__main__ import parse_args, streamlit_args
from dashboard.data import default_time_range
from dashboard.demo import Demo, make_tweets
from sentiment.config import TrendsConfig
from sentiment.trends import find_alerts, trends_from_tweets

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def trends() -> pd.DataFrame:
    return trends_from_tweets(make_tweets(Demo(minutes=12, spike=("python", 10))))


def test_one_line_per_keyword_with_a_point_per_window(trends):
    fig = charts.counts_chart(trends)
    assert [(t.name, len(t.x)) for t in fig.data] == [("python", 12), ("rust", 12), ("weather", 12)]
    assert list(fig.data[0].y) == [40] * 12


def test_a_keyword_keeps_its_colour_when_others_are_filtered_out(trends):
    colours = charts.keyword_colours(["python", "rust", "weather"])
    alone = charts.score_chart(trends[trends.keyword == "rust"], colours)
    together = charts.score_chart(trends, colours)
    assert alone.data[0].line.color == together.data[1].line.color == colours["rust"]


def test_alerts_are_marked_on_the_negative_share(trends):
    alerts = find_alerts(trends, None, TrendsConfig(min_baseline_windows=5))
    fig = charts.negative_chart(trends, alerts)
    assert fig.data[-1].name == "alert" and len(fig.data[-1].x) == len(alerts) == 1
    assert charts.negative_chart(trends, alerts.head(0)).data[-1].name == "weather"


def test_label_shares_add_up_to_one(trends):
    fig = charts.shares_chart(trends)
    assert [t.name for t in fig.data] == ["Negative", "Neutral", "Positive"]
    total = sum(pd.Series(t.x, index=t.y) for t in fig.data)
    assert total.tolist() == pytest.approx([1.0, 1.0, 1.0])


def test_streamlit_runs_on_loopback_without_telemetry(tmp_path):
    args = streamlit_args(parse_args(["--output-root", str(tmp_path), "--port", "28555"]))
    options = dict(zip(args[2::2], args[3::2], strict=False))
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == "28555"
    assert options["--browser.gatherUsageStats"] == "false"
    assert options["--server.headless"] == "true"
    root = tmp_path.resolve()
    assert args[args.index("--") + 1 :] == [
        "--tweets",
        str(root / "tweets"),
        "--trends",
        str(root / "trends"),
        "--alerts",
        str(root / "alerts"),
        "--refresh-seconds",
        "5.0",
    ]
    assert isinstance(parse_args([]), argparse.Namespace)


def test_the_dashboard_reads_the_configured_output_trends_and_alerts(tmp_path, monkeypatch):
    folders = {"STREAM__OUTPUT": "scored", "TRENDS__OUTPUT": "windows", "TRENDS__ALERTS": "raised"}
    for key, name in folders.items():
        monkeypatch.setenv(f"TWEETSENT_{key}", str(tmp_path / name))
    args = parse_args([])
    assert (args.tweets, args.trends, args.alerts) == (tmp_path / "scored", tmp_path / "windows", tmp_path / "raised")
    passed = streamlit_args(args)
    assert passed[passed.index("--trends") + 1] == str(tmp_path / "windows")
    # An explicit output root still reads its three subfolders.
    assert parse_args(["--output-root", str(tmp_path)]).alerts == tmp_path / "alerts"


def test_the_first_view_shows_a_replay_whole_and_a_live_stream_its_recent_hour():
    now = pd.Timestamp("2026-12-04 08:00", tz="UTC")
    assert default_time_range(pd.Timestamp("2009-06-25 18:00", tz="UTC"), now) == "All"  # the bundled replay
    assert default_time_range(now - pd.Timedelta(minutes=3), now) == "Last hour"  # live
    assert default_time_range(None, now) == "All"


def test_the_titles_name_the_window_the_trends_have(trends):
    assert charts.counts_chart(trends).layout.title.text == "Tweets per minute"
    wide = trends.assign(window_end=trends["window_start"] + pd.Timedelta(hours=2))
    assert charts.counts_chart(wide).layout.title.text == "Tweets per 2-hour window"
    assert (
        charts.negative_chart(wide, wide.head(0)).layout.title.text
        == "Negative share per 2-hour window (alerts marked)"
    )
    five = trends.assign(window_end=trends["window_start"] + pd.Timedelta(minutes=5))
    assert charts.score_chart(five).layout.title.text == "Mean positive score per 5-minute window"
