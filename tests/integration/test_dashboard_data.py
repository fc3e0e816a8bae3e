import pandas as pd
import pytest

from dashboard.data import OutputReader, range_start
from dashboard.demo import Demo, write_demo_output
from sentiment.config import TrendsConfig
from sentiment.trends import find_alerts

pytestmark = pytest.mark.integration

DEMO = Demo(minutes=20, spike=("python", 15), rows_per_file=100)


@pytest.fixture(scope="module")
def output(tmp_path_factory):
    root = tmp_path_factory.mktemp("output")
    trends = write_demo_output(root, DEMO)
    return root, trends


def test_snapshot_of_everything(output):
    root, trends = output
    snap = OutputReader(root).snapshot(time_range="All", tweets=30)
    assert snap.keywords == ["python", "rust", "weather"]
    assert len(snap.trends) == 60 and snap.trends["n"].sum() == 20 * (40 + 25 + 15)
    pd.testing.assert_frame_equal(snap.trends.reset_index(drop=True), trends.reset_index(drop=True))
    expected = find_alerts(trends, None, TrendsConfig())
    pd.testing.assert_frame_equal(snap.alerts.reset_index(drop=True), expected)
    spike = ("python", DEMO.start + pd.Timedelta(minutes=15))
    assert spike in set(zip(snap.alerts.keyword, snap.alerts.window_start, strict=True))
    assert snap.newest == DEMO.start + pd.Timedelta(minutes=20)
    assert len(snap.tweets) == 30
    assert snap.tweets["processed_at"].is_monotonic_decreasing
    assert snap.tweets["created_at"].min() >= DEMO.start + pd.Timedelta(minutes=19)  # the newest minute only


def test_keywords_and_time_range_filter(output):
    root, _ = output
    snap = OutputReader(root).snapshot(["rust"], "Last 15 minutes", tweets=10)
    assert set(snap.trends.keyword) == {"rust"} and len(snap.trends) == 15
    assert set(snap.alerts.keyword) <= {"rust"}
    assert set(snap.tweets.keyword) == {"rust"} and len(snap.tweets) == 10
    assert snap.keywords == ["python", "rust", "weather"]  # every keyword stays on offer


def test_range_start():
    newest = pd.Timestamp("2026-11-28 10:00", tz="UTC")
    assert range_start(newest, "Last hour") == pd.Timestamp("2026-11-28 09:00", tz="UTC")
    assert range_start(newest, "All") is None
    assert range_start(None, "Last hour") is None
    with pytest.raises(ValueError, match="Last week"):
        range_start(newest, "Last week")


def test_a_window_written_twice_shows_its_newest_row(tmp_path, output):
    _, trends = output
    (tmp_path / "trends").mkdir()
    trends.to_parquet(tmp_path / "trends" / "batch-0.parquet", index=False)
    again = trends.head(1).assign(n=999)
    again.to_parquet(tmp_path / "trends" / "batch-1.parquet", index=False)
    shown = OutputReader(tmp_path).trends()
    assert len(shown) == len(trends)
    assert shown.set_index(["keyword", "window_start"]).loc[(again.keyword[0], again.window_start[0]), "n"] == 999


def test_folders_without_the_expected_columns_show_nothing(tmp_path):
    (tmp_path / "trends").mkdir()
    pd.DataFrame({"something": [1]}).to_parquet(tmp_path / "trends" / "x.parquet")
    snap = OutputReader(tmp_path).snapshot()
    assert snap.trends.empty and snap.alerts.empty and snap.tweets.empty and snap.keywords == []
    assert snap.newest is None
