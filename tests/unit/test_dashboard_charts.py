import argparse
import json

import numpy as np
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


def layer(spec: dict, name: str) -> list[dict]:
    """The rows a named layer of a chart draws."""
    return next(part["data"]["values"] for part in spec["layer"] if part["name"] == name)


def test_one_bar_per_keyword_with_a_bucket_per_window_over_a_short_range(trends):
    spec = charts.counts_chart(charts.view(trends))
    assert charts.series_points(spec, "bars") == {"python": 12, "rust": 12, "weather": 12}
    python = [row for row in layer(spec, "bars") if row["keyword"] == "python"]
    assert [row["n"] for row in python] == [40] * 12
    # Stacked: each bar starts where the keyword before it in the bucket ends.
    first = [row for row in layer(spec, "bars") if row["bucket_start"] == python[0]["bucket_start"]]
    assert [(row["base"], row["top"]) for row in first] == [(0, 40), (40, 65), (65, 80)]
    json.dumps(spec, allow_nan=False)  # what Streamlit sends: plain JSON, no NaN


def test_a_keyword_keeps_its_colour_when_others_are_filtered_out(trends):
    colours = charts.keyword_colours(["python", "rust", "weather"])
    alone = charts.score_chart(charts.view(trends[trends.keyword == "rust"]), colours)
    together = charts.score_chart(charts.view(trends), colours)

    def colour_of(spec, keyword):
        scale = spec["layer"][0]["encoding"]["color"]["scale"]
        return dict(zip(scale["domain"], scale["range"], strict=True))[keyword]

    assert colour_of(alone, "rust") == colour_of(together, "rust") == colours["rust"]


def test_alerts_are_marked_on_the_negative_share(trends):
    alerts = find_alerts(trends, None, TrendsConfig(min_baseline_windows=5))
    spec = charts.negative_chart(charts.view(trends), alerts)
    assert len(layer(spec, "alerts")) == len(alerts) == 1
    quiet = charts.negative_chart(charts.view(trends), alerts.head(0))
    assert "alerts" not in [part["name"] for part in quiet["layer"]]


def test_the_negative_share_carries_its_interval_as_a_band_around_the_line(trends):
    spec = charts.negative_chart(charts.view(trends), trends.head(0))
    band = [row for row in layer(spec, "band") if row["keyword"] == "python"]
    assert len(band) == 12
    assert all(row["negative_low"] <= row["negative_share"] <= row["negative_high"] for row in band)
    assert all(row["negative_high"] - row["negative_low"] > 0.05 for row in band)  # 40 tweets: not a point
    band_layer = next(part for part in spec["layer"] if part["name"] == "band")
    assert band_layer["mark"]["type"] == "area" and band_layer["encoding"]["y2"]["field"] == "negative_high"


def test_the_titles_name_the_bucket_drawn(trends):
    assert charts.counts_chart(charts.view(trends))["title"]["text"] == "Tweets per minute"
    wide = trends.assign(window_end=trends["window_start"] + pd.Timedelta(hours=2))
    assert charts.counts_chart(charts.view(wide))["title"]["text"] == "Tweets per 2 hours"
    assert (
        charts.negative_chart(charts.view(wide), wide.head(0))["title"]["text"]
        == "Negative share per 2 hours, 95% interval (alerts marked)"
    )


def _sparse_months() -> pd.DataFrame:
    """1-minute windows over three months, a tweet or two in most of them, a busy day in the middle."""
    rng = np.random.default_rng(1)
    start = pd.Timestamp("2009-04-06", tz="UTC")
    minutes = np.sort(rng.choice(90 * 24 * 60, 3000, replace=False))
    busy = np.arange(45 * 24 * 60, 45 * 24 * 60 + 600)  # ten hours of a tweet a minute, day 45
    minutes = np.union1d(minutes, busy)
    window_start = start + pd.to_timedelta(minutes, unit="min")
    n = np.where(np.isin(minutes, busy), 3, 1)
    negative = rng.binomial(n, 0.4)
    return pd.DataFrame(
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


def test_three_months_of_minutes_are_drawn_in_at_most_300_points_with_every_tweet_counted():
    trends = _sparse_months()
    v = charts.view(trends)
    assert v.bucket == pd.Timedelta(hours=12) and v.bucket_name == "12 hours"
    assert 100 <= v.points() <= 300
    for spec in (charts.counts_chart(v), charts.score_chart(v), charts.negative_chart(v, trends.head(0))):
        for part in spec["layer"]:
            assert len(part["data"]["values"]) <= 300, part["name"]
    assert sum(row["n"] for row in layer(charts.counts_chart(v), "bars")) == trends["n"].sum()
    # The score is the tweets' mean, not the mean of the windows' means.
    day = v.buckets.loc[v.buckets["n"].idxmax()]
    rows = trends[(trends.window_start >= day.bucket_start) & (trends.window_start < day.bucket_start + v.bucket)]
    assert day["mean_p_positive"] == pytest.approx((rows.mean_p_positive * rows.n).sum() / rows.n.sum())


def test_buckets_with_few_tweets_are_faded_and_empty_ones_break_the_line():
    trends = _sparse_months()
    trends = trends[(trends.window_start < "2009-04-20") | (trends.window_start >= "2009-05-01")]  # 11 empty days
    v = charts.view(trends, min_tweets=12)
    spec = charts.score_chart(v)
    n = v.buckets["n"].to_numpy()
    line, few = layer(spec, "line"), layer(spec, "few")
    assert len(line) == (n >= 12).sum() and len(few) == ((n > 0) & (n < 12)).sum() > 0
    assert all(row["n"] >= 12 for row in line) and all(0 < row["n"] < 12 for row in few)
    faded = next(part for part in spec["layer"] if part["name"] == "few")
    assert faded["mark"]["opacity"] < 0.5
    # Each run of buckets with enough tweets is its own line (detail by run): the gaps break it.
    runs = {row["run"] for row in line}
    assert len(runs) > 1
    line_layer = next(part for part in spec["layer"] if part["name"] == "line")
    assert line_layer["encoding"]["detail"] == {"field": "run"}
    empty = v.buckets[v.buckets["n"] == 0]
    assert len(empty) >= 22  # 11 days of 12-hour buckets, drawn as nothing
    assert not {row["bucket_start"] for row in line} & set(empty["bucket_start"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))


def test_label_shares_add_up_to_one(trends):
    spec = charts.shares_chart(trends)
    rows = layer(spec, "bars")
    assert sorted({row["label"] for row in rows}) == ["Negative", "Neutral", "Positive"]
    totals = pd.DataFrame(rows).groupby("keyword")["share"].sum()
    assert totals.tolist() == pytest.approx([1.0, 1.0, 1.0])
    assert pd.DataFrame(rows).groupby("keyword")["tweets"].sum().tolist() == [480, 300, 180]


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
        "--labels",
        str(root / "labels"),
        "--service-url",
        "http://127.0.0.1:8000",
        "--token-file",
        "",
        "--refresh-seconds",
        "5.0",
        "--min-tweets",
        "5",
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
