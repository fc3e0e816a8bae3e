import numpy as np
import pandas as pd
import pytest

from dashboard.resolution import bucket_name, choose_bucket, rebucket, wilson

pytestmark = pytest.mark.unit
MINUTE, HOUR, DAY = pd.Timedelta(minutes=1), pd.Timedelta(hours=1), pd.Timedelta(days=1)


@pytest.mark.parametrize(
    ("span", "window", "bucket"),
    [
        (HOUR, MINUTE, MINUTE),  # an hour of a live stream keeps its minutes
        (6 * HOUR, MINUTE, 2 * MINUTE),
        (DAY, MINUTE, 5 * MINUTE),
        (7 * DAY, MINUTE, 1 * HOUR),
        (90 * DAY, MINUTE, 12 * HOUR),  # three months of a replay: half-days
        (90 * DAY, 2 * HOUR, 12 * HOUR),
        (20 * DAY, 2 * HOUR, 2 * HOUR),  # 241 two-hour windows fit as they are
        (30 * DAY, 2 * HOUR, 6 * HOUR),  # 3 hours is not a whole number of 2-hour windows
        (3 * 365 * DAY, DAY, 7 * DAY),
        (40 * 365 * DAY, DAY, 49 * DAY),  # beyond the ladder: a multiple of the window
        (pd.Timedelta(0), MINUTE, MINUTE),
    ],
)
def test_the_bucket_is_the_finest_that_fits_the_range_in_300_points(span, window, bucket):
    chosen = choose_bucket(span, window)
    assert chosen == bucket
    assert span // chosen + 1 <= 300 and chosen % window == pd.Timedelta(0)


def test_a_bucket_needs_a_positive_window_and_room_for_a_line():
    with pytest.raises(ValueError, match="window must be positive"):
        choose_bucket(DAY, pd.Timedelta(0))
    with pytest.raises(ValueError, match="max_points"):
        choose_bucket(DAY, MINUTE, max_points=1)


def test_buckets_are_named_as_a_reader_says_them():
    assert [bucket_name(b) for b in (MINUTE, 5 * MINUTE, HOUR, 12 * HOUR, DAY, 7 * DAY)] == [
        "minute",
        "5 minutes",
        "hour",
        "12 hours",
        "day",
        "7 days",
    ]
    assert bucket_name(pd.Timedelta(seconds=30)) == "30 seconds"


def test_the_wilson_interval_holds_the_share_and_narrows_with_more_tweets():
    low, high = wilson(np.array([0, 1, 10, 100]), np.array([1, 2, 20, 200]))
    assert low[0] == 0.0 and 0.7 < high[0] < 0.8  # one tweet, not negative: anything up to ~79%
    assert (low[1:] < 0.5).all() and (high[1:] > 0.5).all()
    widths = high[1:] - low[1:]
    assert widths[0] > widths[1] > widths[2]
    # The textbook value: 10 of 20 at 95% is 0.299 to 0.701.
    assert (low[2], high[2]) == pytest.approx((0.2993, 0.7007), abs=1e-3)
    assert np.isnan(wilson(np.array([0]), np.array([0]))[0]).all()


def test_rebucket_sums_counts_and_fills_empty_buckets():
    start = pd.Timestamp("2026-01-01", tz="UTC")
    trends = pd.DataFrame(
        {
            "keyword": ["a", "a", "a", "b"],
            "window_start": [start, start + MINUTE, start + 7 * MINUTE, start + 9 * MINUTE],
            "n": [2, 6, 4, 1],
            "n_negative": [2, 0, 1, 1],
            "n_neutral": [0, 3, 1, 0],
            "n_positive": [0, 3, 2, 0],
            "mean_p_positive": [0.1, 0.7, 0.5, 0.2],
        }
    )
    out = rebucket(trends, 5 * MINUTE)
    a = out[out.keyword == "a"].set_index("bucket_start")
    assert list(a["n"]) == [8, 4] and list(a["n_negative"]) == [2, 1]
    assert a["mean_p_positive"].iloc[0] == pytest.approx((0.1 * 2 + 0.7 * 6) / 8)
    assert a["negative_share"].iloc[0] == pytest.approx(0.25)
    b = out[out.keyword == "b"]
    assert list(b["n"]) == [0, 1]  # b's empty first bucket is a row, with no share
    assert np.isnan(b["negative_share"].iloc[0]) and np.isnan(b["negative_low"].iloc[0])
    assert out["n"].sum() == trends["n"].sum()
