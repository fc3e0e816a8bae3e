"""The charts' resolution: trends windows summed into buckets chosen from the time range in view.

The job writes one trends row per keyword and window (``trends.window``, one minute by default). Drawn
as they are, three months of a replay are thousands of points, most from one or two tweets. The page
sums them into buckets instead: the smallest bucket of :data:`BUCKETS` that is a whole number of
windows and leaves at most ``max_points`` per series over the range shown, so that an hour of a live
stream keeps its minutes and three months of a replay come out in half-days. A bucket's shares are
its tweets' shares (counts summed, the mean score weighted by tweets), with the 95% Wilson interval
of its negative share; a bucket with no tweet is a row of its own with no share, so that a line
breaks there instead of joining the points either side.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sentiment.labelled import wilson

MAX_POINTS = 300
# Bucket sizes a reader can name, finest first; one is used only when it is a whole number of windows.
BUCKETS: tuple[pd.Timedelta, ...] = tuple(
    pd.Timedelta(s)
    for s in (
        "1s", "5s", "10s", "15s", "30s",
        "1min", "2min", "5min", "10min", "15min", "30min",
        "1h", "2h", "3h", "6h", "12h",
        "1D", "2D", "7D", "14D", "28D",
    )
)  # fmt: skip
COUNT_COLUMNS = ("n", "n_negative", "n_neutral", "n_positive")


def window_of(trends: pd.DataFrame) -> pd.Timedelta | None:
    """The trends' window, read from its rows (None when there are none)."""
    if trends.empty:
        return None
    return pd.Timedelta(trends["window_end"].iloc[0] - trends["window_start"].iloc[0])


def choose_bucket(span: pd.Timedelta, window: pd.Timedelta, max_points: int = MAX_POINTS) -> pd.Timedelta:
    """The smallest bucket of :data:`BUCKETS`, a whole number of windows, with at most ``max_points`` over ``span``.

    The window itself when it is not on the ladder and already few enough; beyond the ladder's top,
    the window times the multiple that brings the count down to ``max_points``.

    Raises:
        ValueError: if ``window`` is not positive or ``max_points`` is below 2.
    """
    if window <= pd.Timedelta(0):
        raise ValueError(f"the window must be positive, got {window}")
    if max_points < 2:
        raise ValueError(f"max_points must be at least 2, got {max_points}")
    span = max(span, pd.Timedelta(0))

    def points(bucket: pd.Timedelta) -> int:
        return int(span // bucket) + 1

    if points(window) <= max_points:
        return window
    for bucket in BUCKETS:
        if bucket > window and bucket % window == pd.Timedelta(0) and points(bucket) <= max_points:
            return bucket
    return window * int(np.ceil(span / window / (max_points - 1)))


def bucket_name(bucket: pd.Timedelta) -> str:
    """A bucket in words, for a title: "minute", "5 minutes", "2 hours", "12 hours", "day", "7 days"."""
    units = (("day", pd.Timedelta(days=1)), ("hour", pd.Timedelta(hours=1)), ("minute", pd.Timedelta(minutes=1)))
    for unit, size in units:
        if bucket >= size and bucket % size == pd.Timedelta(0):
            count = bucket // size
            return unit if count == 1 else f"{count} {unit}s"
    seconds = bucket.total_seconds()
    return "second" if seconds == 1 else f"{seconds:g} seconds"


def window_words(window: pd.Timedelta) -> str:
    """A window as an adjective: "1-minute", "2-hour", "30-second", "1-day"."""
    name = bucket_name(window)
    count, _, unit = name.partition(" ") if name[0].isdigit() else ("1", "", name)
    return f"{count}-{unit.rstrip('s')}"


def rebucket(
    trends: pd.DataFrame,
    bucket: pd.Timedelta,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    series: str = "keyword",
) -> pd.DataFrame:
    """One row per keyword (or other ``series`` column) and bucket from ``start`` to ``end``, empty buckets included.

    Args:
        trends: rows of the trends table (``keyword``, ``window_start``, the counts, ``mean_p_positive``).
        bucket: the bucket size, a whole number of the trends' windows.
        start, end: the range in view (default: the first window's start, the last window's start).
        series: the column that tells the series apart (``model_version`` for a keyword's split by version).

    Returns:
        ``keyword`` (or ``series``), ``bucket_start``, ``n``, ``n_negative``, ``n_neutral``, ``n_positive``,
        ``mean_p_positive``, ``negative_share``, ``negative_low``, ``negative_high``; sorted by
        series then time; the shares NaN where a bucket has no tweet.
    """
    columns = [series, "bucket_start", *COUNT_COLUMNS, "mean_p_positive", "negative_share"]
    if trends.empty:
        return pd.DataFrame(columns=[*columns, "negative_low", "negative_high"])
    start = trends["window_start"].min() if start is None else start
    end = trends["window_start"].max() if end is None else end
    rows = trends.assign(
        bucket_start=trends["window_start"].dt.floor(bucket),
        score_sum=trends["mean_p_positive"] * trends["n"],
    )
    sums = rows.groupby([series, "bucket_start"], sort=True)[[*COUNT_COLUMNS, "score_sum"]].sum()
    grid = pd.date_range(pd.Timestamp(start).floor(bucket), pd.Timestamp(end).floor(bucket), freq=bucket)
    names = sums.index.get_level_values(series).unique()
    full = pd.MultiIndex.from_product([names, grid], names=[series, "bucket_start"])
    out = sums.reindex(full.union(sums.index), fill_value=0).reset_index()
    n = out["n"].where(out["n"] > 0)
    out["mean_p_positive"] = out.pop("score_sum") / n
    out["negative_share"] = out["n_negative"] / n
    out["negative_low"], out["negative_high"] = wilson(out["n_negative"], n)
    out[list(COUNT_COLUMNS)] = out[list(COUNT_COLUMNS)].astype("int64")
    return out.sort_values([series, "bucket_start"]).reset_index(drop=True)
