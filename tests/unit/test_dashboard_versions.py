"""A keyword's trend split by model version: sums read from real parquet files, and the charts' specs."""

import json
import os
import shutil

import pandas as pd
import pytest

from dashboard import charts
from dashboard.data import OutputReader
from dashboard.demo import Demo, main, make_tweets, write_demo_output
from dashboard.versions import UNKNOWN_VERSION, VersionSums, sum_by_version, takeovers, version_order
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.trends import trends_from_tweets

pytestmark = pytest.mark.unit

SWAP = Demo(minutes=40, swap_at=25, spike=None)  # demo until 09:25, demo-2 (scores 0.15 higher) after
MINUTE = pd.Timedelta(minutes=1)


@pytest.fixture(scope="module")
def swapped(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    write_demo_output(root, SWAP)
    return root


def layer(spec: dict, name: str) -> list[dict]:
    return next(part["data"]["values"] for part in spec["layer"] if part["name"] == name)


def split_of(reader: OutputReader, keyword: str, since=None) -> tuple[charts.View, tuple[dict, dict]]:
    rows = reader.versions_of(keyword, since)
    view = charts.view(rows, since, reader.trends()["window_end"].max(), series="model_version")
    colours = charts.version_colours(list(version_order(rows).index))
    return view, charts.version_charts(view, takeovers(rows), keyword, colours)


def test_the_demo_swaps_the_model_mid_stream_with_a_higher_score():
    tweets = make_tweets(SWAP)
    after = tweets["created_at"] >= SWAP.start + 25 * MINUTE
    assert set(tweets.loc[~after, "model_version"]) == {"demo"}
    assert set(tweets.loc[after, "model_version"]) == {"demo-2"}
    unswapped = make_tweets(Demo(minutes=40, spike=None))  # the same draws, scored by the first model
    assert (tweets.loc[~after, "p_positive"] == unswapped.loc[~after, "p_positive"]).all()
    shift = tweets.loc[after, "p_positive"] - unswapped.loc[after, "p_positive"]
    assert shift.between(0, 0.15 + 1e-9).all() and shift.mean() > 0.1
    assert set(make_tweets(Demo(minutes=12))["model_version"]) == {"demo"}  # no swap unless asked


def test_a_swap_outside_the_stream_is_refused(tmp_path):
    with pytest.raises(ValueError, match="swap_at"):
        Demo(minutes=40, swap_at=40)
    with pytest.raises(SystemExit):
        main(["--output-root", str(tmp_path), "--minutes", "20", "--swap-at", "0"])
    assert main(["--output-root", str(tmp_path), "--minutes", "20", "--swap-at", "12"]) == 0
    assert OutputReader(tmp_path).versions_of("rust")["model_version"].unique().tolist() == ["demo", "demo-2"]


def test_each_version_is_a_series_that_counts_its_tweets_once(swapped):
    reader = OutputReader(swapped)
    view, (score, negative) = split_of(reader, "python")
    tweets = make_tweets(SWAP)
    expected = tweets[tweets.keyword == "python"].groupby("model_version").size().to_dict()
    assert expected == {"demo": 1000, "demo-2": 600}
    assert view.buckets.groupby("model_version")["n"].sum().to_dict() == expected
    trends = reader.trends()
    assert sum(expected.values()) == trends.loc[trends.keyword == "python", "n"].sum()  # as the trends count them
    for spec in (score, negative):
        assert charts.series_points(spec, "points", "model_version") == {"demo": 25, "demo-2": 15}
        colour = next(part for part in spec["layer"] if part["name"] == "line")["encoding"]["color"]
        assert colour["field"] == "model_version" and colour["scale"]["domain"] == ["demo", "demo-2"]
        assert colour["legend"] is not None  # the legend names the versions
        json.dumps(spec, allow_nan=False)
    # The score moved with the model: demo-2's windows sit above demo's.
    means = view.buckets.groupby("model_version")["mean_p_positive"].mean()
    assert means["demo-2"] - means["demo"] > 0.1
    assert score["title"]["text"] == "python: mean positive score per minute, by model version"


def test_the_takeover_is_marked_at_the_new_versions_first_tweet(swapped):
    _, (score, negative) = split_of(OutputReader(swapped), "rust")
    tweets = make_tweets(SWAP)
    first = tweets.loc[(tweets.keyword == "rust") & (tweets.model_version == "demo-2"), "created_at"].min()
    for spec in (score, negative):
        marks = layer(spec, "takeovers")
        assert [(m["model_version"], m["first_at"]) for m in marks] == [("demo-2", f"{first:%Y-%m-%dT%H:%M:%SZ}")]
        assert [m["name"] for m in layer(spec, "takeover_names")] == ["demo-2 takes over"]


def test_a_range_after_the_swap_has_one_version_and_no_mark(swapped):
    reader = OutputReader(swapped)
    since = SWAP.start + 30 * MINUTE
    rows = reader.versions_of("weather", since)
    assert version_order(rows).index.tolist() == ["demo-2"]
    assert takeovers(rows).empty
    assert rows["window_start"].min() == since


def test_a_window_the_job_has_not_closed_is_left_out_as_the_trends_leave_it(swapped, tmp_path):
    root = tmp_path / "output"
    shutil.copytree(swapped, root)
    last = sorted((root / "trends").glob("*.parquet"))[-1]
    last.unlink()  # 09:39 not closed yet: its tweets are written, its trends row is not
    reader = OutputReader(root)
    rows = reader.versions_of("python")
    assert rows["window_end"].max() == reader.trends()["window_end"].max() == SWAP.start + 39 * MINUTE
    trends = reader.trends()
    assert rows["n"].sum() == trends.loc[trends.keyword == "python", "n"].sum()


def test_days_of_a_swapped_stream_keep_to_300_points_in_the_trends_buckets(tmp_path):
    """Three days of minutes, the model swapped after two: one file of tweets and one of trends (a
    file per minute, as the demo writes them, would be thousands)."""
    days = 24 * 60
    demo = Demo(keywords={"python": (2, 0.3)}, minutes=3 * days, swap_at=2 * days, spike=None)
    tweets = make_tweets(demo)
    (tmp_path / "tweets").mkdir()
    (tmp_path / "trends").mkdir()
    tweets.to_parquet(tmp_path / "tweets" / "batch-0.parquet", index=False)
    trends_from_tweets(tweets).to_parquet(tmp_path / "trends" / "batch-0.parquet", index=False)
    reader = OutputReader(tmp_path)
    view, (score, negative) = split_of(reader, "python")
    assert view.bucket == charts.view(reader.trends()).bucket == pd.Timedelta(minutes=15)  # as the trends' charts
    assert 0 < view.points() <= charts.MAX_POINTS
    assert view.buckets.groupby("model_version")["n"].sum().to_dict() == {"demo": 2 * days * 2, "demo-2": days * 2}
    for spec in (score, negative):
        assert all(0 < n <= charts.MAX_POINTS for n in charts.series_points(spec, "points", "model_version").values())
    first = tweets.loc[tweets.model_version == "demo-2", "created_at"].min()
    assert first.floor("min") == demo.start + 2 * pd.Timedelta(days=1)
    assert [m["first_at"] for m in layer(score, "takeovers")] == [f"{first:%Y-%m-%dT%H:%M:%SZ}"]  # its first tweet


def test_the_sums_open_each_file_once_and_catch_up_with_new_and_finished_files(tmp_path):
    staging = tmp_path / "staging"
    write_demo_output(staging, Demo(minutes=12, swap_at=6, spike=None, rows_per_file=100))
    batches = sorted((staging / "tweets").rglob("*.parquet"))
    folder = tmp_path / "tweets" / "date=2026-11-28"
    folder.mkdir(parents=True)
    for path in batches[:4]:
        shutil.copy(path, folder / path.name)
    partial = folder / batches[4].name
    partial.write_bytes(b"PAR1\x15\x00")  # being written: skipped, not an error
    sums = VersionSums(tmp_path / "tweets")
    first = sums.read(MINUTE)
    assert first["n"].sum() == 400
    assert sums.read(MINUTE) is first  # nothing new: nothing opened, nothing summed again
    shutil.copy(batches[4], partial)  # finished
    os.utime(partial, ns=(first["first_at"].max().value + 10**9,) * 2)
    for path in batches[5:]:
        shutil.copy(path, folder / path.name)
    every = make_tweets(Demo(minutes=12, swap_at=6, spike=None))
    assert sums.read(MINUTE)["n"].sum() == len(every)
    expected = every.groupby(["keyword", "model_version"]).size()
    assert sums.read(MINUTE).groupby(["keyword", "model_version"])["n"].sum().equals(expected)
    (folder / batches[0].name).unlink()  # a file gone: the sums start again without it
    assert sums.read(MINUTE)["n"].sum() == len(every) - 100


def test_tweets_without_a_version_or_a_keyword_are_counted_under_their_own_names():
    tweets = pd.DataFrame(
        {
            "keyword": [None, "python", "python"],
            "created_at": pd.to_datetime(["2026-11-28 09:00:10", "2026-11-28 09:00:20", None], utc=True),
            "p_positive": [0.2, 0.8, 0.5],
            "sentiment": [NEGATIVE, POSITIVE, NEUTRAL],
        }
    )
    sums = sum_by_version(tweets, MINUTE)
    assert sums[["keyword", "model_version", "n", "n_negative", "n_positive"]].values.tolist() == [
        ["(no keyword)", UNKNOWN_VERSION, 1, 1, 0],
        ["python", UNKNOWN_VERSION, 1, 0, 1],
    ]  # the tweet without a time is in no window, as in the trends
