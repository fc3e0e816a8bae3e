"""Sentiment per keyword per event-time window, and the alerts raised on it: schemas and pure pandas functions.

The Spark job writes one trends row per keyword and closed window to ``output/trends`` and the
alerts that :func:`find_alerts` raises on them to ``output/alerts``; the dashboard and the report
read both. Only pandas is needed here, so the job's driver, the dashboard and the tests share it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.schema import ALERTS_COLUMNS, TRENDS_COLUMNS

if TYPE_CHECKING:
    from sentiment.config import TrendsConfig

# Tweets relayed without a keyword (a replay of the plain sample, no --track) are counted under this one.
NO_KEYWORD = "(no keyword)"
LABEL_COUNTS = {NEGATIVE: "n_negative", NEUTRAL: "n_neutral", POSITIVE: "n_positive"}
_INT_COLUMNS = frozenset({"n", "n_negative", "n_neutral", "n_positive", "baseline_windows"})


def empty_trends() -> pd.DataFrame:
    """A trends frame with no rows and the right dtypes."""
    return _typed(pd.DataFrame({c: [] for c in TRENDS_COLUMNS}), TRENDS_COLUMNS)


def empty_alerts() -> pd.DataFrame:
    """An alerts frame with no rows and the right dtypes."""
    return _typed(pd.DataFrame({c: [] for c in ALERTS_COLUMNS}), ALERTS_COLUMNS)


def as_utc(times: pd.Series) -> pd.Series:
    """Timestamps as UTC: aware ones converted, naive ones taken as UTC, text parsed."""
    if isinstance(times.dtype, pd.DatetimeTZDtype):
        return times.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_dtype(times.dtype):
        return times.dt.tz_localize("UTC")
    return pd.to_datetime(times, utc=True)


def _typed(df: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    out = df.loc[:, list(columns)].copy()
    out["keyword"] = out["keyword"].astype(str)
    for c in ("window_start", "window_end"):
        out[c] = as_utc(out[c])
    for c in columns:
        if c in _INT_COLUMNS:
            out[c] = out[c].astype("int64")
        elif c not in ("keyword", "window_start", "window_end"):
            out[c] = out[c].astype("float64")
    return out.reset_index(drop=True)


def trends_from_tweets(tweets: pd.DataFrame, window: str = "1min") -> pd.DataFrame:
    """Aggregate scored tweets into trends rows, the way the Spark job does (its reference in tests).

    Args:
        tweets: rows with ``keyword``, ``created_at``, ``sentiment`` and ``p_positive``.
        window: a pandas frequency (``"1min"``); windows are aligned on the epoch, as Spark's are.

    Returns:
        One row per keyword and window with at least one tweet, sorted by window then keyword.
    """
    if tweets.empty:
        return empty_trends()
    df = pd.DataFrame(
        {
            "keyword": tweets["keyword"].fillna(NO_KEYWORD).astype(str),
            "window_start": as_utc(tweets["created_at"]).dt.floor(window),
            "p_positive": tweets["p_positive"].astype("float64"),
        }
    )
    for label, column in LABEL_COUNTS.items():
        df[column] = (tweets["sentiment"] == label).astype("int64").to_numpy()
    g = df.groupby(["keyword", "window_start"], sort=False)
    out = g.agg(
        n=("p_positive", "size"),
        n_negative=("n_negative", "sum"),
        n_neutral=("n_neutral", "sum"),
        n_positive=("n_positive", "sum"),
        mean_p_positive=("p_positive", "mean"),
    ).reset_index()
    out["window_end"] = out["window_start"] + pd.Timedelta(window)
    out["negative_share"] = out["n_negative"] / out["n"]
    return _typed(out.sort_values(["window_start", "keyword"]), TRENDS_COLUMNS)


def find_alerts(trends: pd.DataFrame, history: pd.DataFrame | None, config: TrendsConfig) -> pd.DataFrame:
    """Flag the windows of ``trends`` whose negative share is far above their keyword's recent baseline.

    A window with at least ``config.min_count`` tweets is compared with the keyword's windows that
    ended at or before its start and had at least ``min_count`` tweets themselves, the last
    ``config.baseline_windows`` of them (from ``history`` and the earlier rows of ``trends``). With at
    least ``config.min_baseline_windows`` such windows, its z-score is
    ``(negative_share - mean) / max(std, config.min_std)`` and it alerts when that is at least
    ``config.z_threshold``. Rows of ``history`` that are also in ``trends`` (same keyword and window)
    are ignored.

    Args:
        trends: the windows to judge (the windows just closed), columns as :data:`TRENDS_COLUMNS`.
        history: windows already written before them (may be None or empty).
        config: the thresholds.

    Returns:
        One row per alert, columns as :data:`ALERTS_COLUMNS`, sorted by window then keyword.
    """
    if trends.empty:
        return empty_alerts()
    new = _typed(trends, TRENDS_COLUMNS)
    new["_new"] = True
    frames = [new]
    if history is not None and not history.empty:
        old = _typed(history, TRENDS_COLUMNS)
        old["_new"] = False
        frames.insert(0, old)
    both = pd.concat(frames, ignore_index=True)
    # A window in both keeps the new row (the last): history is what was there before.
    both = both.drop_duplicates(["keyword", "window_start"], keep="last")
    both = both.sort_values(["keyword", "window_start"], kind="stable").reset_index(drop=True)

    rows = []
    for _, group in both.groupby("keyword", sort=False):
        rows.extend(_alerts_of_keyword(group, config))
    if not rows:
        return empty_alerts()
    out = pd.DataFrame(rows, columns=list(ALERTS_COLUMNS))
    return _typed(out.sort_values(["window_start", "keyword"]), ALERTS_COLUMNS)


def _alerts_of_keyword(group: pd.DataFrame, config: TrendsConfig) -> list[dict]:
    counted = group["n"].to_numpy() >= config.min_count
    shares = group["negative_share"].to_numpy(dtype="float64")
    starts = group["window_start"].to_numpy()
    ends = group["window_end"].to_numpy()
    rows = []
    for i in np.flatnonzero(group["_new"].to_numpy() & counted):
        before = np.flatnonzero(counted & (ends <= starts[i]))[-config.baseline_windows :]
        if len(before) < config.min_baseline_windows:
            continue
        baseline = shares[before]
        mean = float(baseline.mean())
        std = float(baseline.std(ddof=1)) if len(baseline) > 1 else 0.0
        z = (shares[i] - mean) / max(std, config.min_std)
        if z >= config.z_threshold:
            row = group.iloc[i]
            rows.append(
                {
                    "keyword": row["keyword"],
                    "window_start": row["window_start"],
                    "window_end": row["window_end"],
                    "n": row["n"],
                    "n_negative": row["n_negative"],
                    "negative_share": row["negative_share"],
                    "baseline_mean": mean,
                    "baseline_std": std,
                    "baseline_windows": len(before),
                    "z_score": z,
                }
            )
    return rows


def describe_alert(alert: pd.Series | dict) -> str:
    """One log line for an alert."""
    return (
        f"negative spike for {alert['keyword']!r} in the window starting {pd.Timestamp(alert['window_start'])}: "
        f"{alert['negative_share']:.0%} negative of {int(alert['n'])} tweets against a baseline of "
        f"{alert['baseline_mean']:.0%} (z = {alert['z_score']:.1f}, {int(alert['baseline_windows'])} windows)"
    )
