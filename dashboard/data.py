"""What the dashboard shows, read from the job's outputs: trends, alerts and the latest tweets.

The three folders are the configured ``stream.output``, ``trends.output`` and ``trends.alerts``
(:meth:`OutputPaths.configured`), or ``tweets/``, ``trends/`` and ``alerts/`` under one folder
(:meth:`OutputPaths.under`). Only the trends and the alerts are read whole (one row per keyword and minute), and
only their new files on each refresh; of ``output/tweets`` only the newest files are opened, but for a
keyword's split by model version, which sums five columns of each file once (:mod:`dashboard.versions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from dashboard.resolution import window_of
from dashboard.versions import VersionSums, of_keyword
from sentiment.config import Config
from sentiment.parquet_folder import FolderReader, latest_rows
from sentiment.schema import ALERTS_COLUMNS, TRENDS_COLUMNS
from sentiment.trends import NO_KEYWORD, as_utc, empty_alerts, empty_trends

# The time ranges offered, counted back from the newest window in the output (not from the clock:
# a replay keeps its tweets' own times).
TIME_RANGES: dict[str, pd.Timedelta | None] = {
    "Last 15 minutes": pd.Timedelta(minutes=15),
    "Last hour": pd.Timedelta(hours=1),
    "Last 6 hours": pd.Timedelta(hours=6),
    "Last 24 hours": pd.Timedelta(hours=24),
    "All": None,
}
DEFAULT_TIME_RANGE = "Last hour"
# Newest window older than this (by the clock): a replay with its tweets' own times, or a stream that
# stopped; the first view then shows everything.
LIVE_WITHIN = pd.Timedelta(hours=1)
# The columns of output/tweets (sentiment.schema.OUTPUT_COLUMNS) the page shows, in its order.
TWEET_COLUMNS = ("created_at", "keyword", "sentiment", "p_positive", "user", "text", "processed_at")
# What the labelling page needs of a tweet: what it shows, and what the labels table keeps of it.
LABELLING_COLUMNS = ("id", "keyword", "text", "p_positive", "sentiment", "model_version", "processed_at")


@dataclass(frozen=True)
class Snapshot:
    """One refresh of the page: the filtered trends and alerts, the latest tweets, the keywords there are."""

    trends: pd.DataFrame
    alerts: pd.DataFrame
    tweets: pd.DataFrame
    keywords: list[str]
    newest: pd.Timestamp | None  # end of the newest window of any keyword
    since: pd.Timestamp | None = None  # start of the range in view (None: from the first window)


def _as_trends(df: pd.DataFrame, columns: tuple[str, ...], empty: pd.DataFrame) -> pd.DataFrame:
    """Rows that have every column, times as UTC, one row per keyword and window (the newest file wins)."""
    if df.empty or not set(columns) <= set(df.columns):
        return empty
    out = df.loc[:, list(columns)].copy()
    for c in ("window_start", "window_end"):
        out[c] = as_utc(out[c])
    out = out.drop_duplicates(["keyword", "window_start"], keep="last")
    return out.sort_values(["window_start", "keyword"]).reset_index(drop=True)


def filter_windows(df: pd.DataFrame, keywords: list[str] | None, since: pd.Timestamp | None) -> pd.DataFrame:
    """Rows of the given keywords (all when None or empty) whose window starts at or after ``since``."""
    mask = pd.Series(True, index=df.index)
    if keywords:
        mask &= df["keyword"].isin(keywords)
    if since is not None:
        mask &= df["window_start"] >= since
    return df[mask]


def range_start(newest: pd.Timestamp | None, time_range: str) -> pd.Timestamp | None:
    """The first window start shown for a named time range (None: from the beginning).

    Raises:
        ValueError: if ``time_range`` is not one of :data:`TIME_RANGES`.
    """
    if time_range not in TIME_RANGES:
        raise ValueError(f"unknown time range {time_range!r}; choose one of {list(TIME_RANGES)}")
    span = TIME_RANGES[time_range]
    return None if span is None or newest is None else newest - span


@dataclass(frozen=True)
class OutputPaths:
    """The three folders the dashboard reads, and the labels table it writes."""

    tweets: Path
    trends: Path
    alerts: Path
    labels_folder: Path | None = None  # default: ``labels/`` beside the tweets

    @property
    def labels(self) -> Path:
        """The labels table (:mod:`sentiment.labelled`): ``labels/`` beside the tweets unless set."""
        return self.labels_folder if self.labels_folder is not None else self.tweets.parent / "labels"

    @classmethod
    def under(cls, root: str | Path) -> OutputPaths:
        """``tweets/``, ``trends/``, ``alerts/`` and ``labels/`` of one output folder (the layout of ``output/``)."""
        root = Path(root)
        return cls(root / "tweets", root / "trends", root / "alerts", root / "labels")

    @classmethod
    def configured(cls, config: Config) -> OutputPaths:
        """The folders the job writes: ``stream.output``, ``trends.output`` and ``trends.alerts``."""
        return cls(
            config.resolve(config.stream.output),
            config.resolve(config.trends.output),
            config.resolve(config.trends.alerts),
        )


def default_time_range(newest: pd.Timestamp | None, now: pd.Timestamp | None = None) -> str:
    """The range the page opens on: a live stream's recent hour, or the whole of anything else.

    Args:
        newest: end of the newest window in the output (None: no window yet).
        now: the clock (default: now, UTC).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    if newest is not None and now - newest <= LIVE_WITHIN:
        return DEFAULT_TIME_RANGE
    return "All"


class OutputReader:
    """Reads the job's outputs for the dashboard; keep one per set of folders and call :meth:`snapshot`.

    Args:
        paths: the folders, or one output folder holding ``tweets/``, ``trends/`` and ``alerts/``.
    """

    def __init__(self, paths: OutputPaths | str | Path) -> None:
        self.paths = paths if isinstance(paths, OutputPaths) else OutputPaths.under(paths)
        self._trends = FolderReader(self.paths.trends, TRENDS_COLUMNS)
        self._alerts = FolderReader(self.paths.alerts, ALERTS_COLUMNS)
        self._versions = VersionSums(self.paths.tweets)
        # The last frame each reader returned, and what it became: redone only when a file changed.
        self._typed: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}

    def _cached(self, name: str, raw: pd.DataFrame, columns: tuple[str, ...], empty) -> pd.DataFrame:
        known = self._typed.get(name)
        if known is not None and known[0] is raw:
            return known[1]
        typed = _as_trends(raw, columns, empty())
        self._typed[name] = (raw, typed)
        return typed

    def trends(self) -> pd.DataFrame:
        """Every trends row, one per keyword and window. Do not modify it: it is shared."""
        return self._cached("trends", self._trends.read(), TRENDS_COLUMNS, empty_trends)

    def alerts(self) -> pd.DataFrame:
        """Every alert, one per keyword and window. Do not modify it: it is shared."""
        return self._cached("alerts", self._alerts.read(), ALERTS_COLUMNS, empty_alerts)

    def latest_tweets(self, n: int, keywords: list[str] | None = None) -> pd.DataFrame:
        """The ``n`` most recently processed tweets (of ``keywords`` if given), newest first."""
        where = ("keyword", keywords) if keywords else None
        df = latest_rows(self.paths.tweets, n, TWEET_COLUMNS, where=where)
        if df.empty or "processed_at" not in df.columns:
            return pd.DataFrame(columns=list(TWEET_COLUMNS))
        return df.sort_values(["processed_at", "created_at"], ascending=False).head(n).reset_index(drop=True)

    def versions_of(self, keyword: str, since: pd.Timestamp | None = None) -> pd.DataFrame | None:
        """``keyword``'s windows from ``since`` on, one row per model version and window, as trends rows
        (:func:`dashboard.versions.of_keyword`), up to the newest window in the trends (a window the job
        has not closed yet is left out, as the trends leave it); None before the first trends window."""
        trends = self.trends()
        window = window_of(trends)
        if window is None:
            return None
        rows = of_keyword(self._versions.read(window), keyword, window, since)
        return rows[rows["window_end"] <= trends["window_end"].max()].reset_index(drop=True)

    def tweets_of(self, keyword: str, n: int) -> pd.DataFrame:
        """Up to ``n`` of the most recently processed tweets of ``keyword`` (``(no keyword)``: tweets
        relayed without one), with the columns of :data:`LABELLING_COLUMNS`."""
        if keyword == NO_KEYWORD:
            df = latest_rows(self.paths.tweets, n, LABELLING_COLUMNS)
            df = df[df["keyword"].isna()] if not df.empty else df
        else:
            df = latest_rows(self.paths.tweets, n, LABELLING_COLUMNS, where=("keyword", [keyword]))
        if df.empty or "id" not in df.columns:
            return pd.DataFrame(columns=list(LABELLING_COLUMNS))
        df = df.assign(keyword=keyword)
        return df.sort_values("processed_at", ascending=False).head(n).reset_index(drop=True)

    def snapshot(
        self, keywords: list[str] | None = None, time_range: str = DEFAULT_TIME_RANGE, tweets: int = 50
    ) -> Snapshot:
        """Everything one refresh of the page shows.

        Args:
            keywords: the keywords to show; all when None or empty.
            time_range: one of :data:`TIME_RANGES`.
            tweets: how many of the latest tweets.
        """
        trends = self.trends()
        newest = trends["window_end"].max() if not trends.empty else None
        since = range_start(newest, time_range)
        return Snapshot(
            trends=filter_windows(trends, keywords, since),
            alerts=filter_windows(self.alerts(), keywords, since),
            tweets=self.latest_tweets(tweets, keywords),
            keywords=sorted(trends["keyword"].unique()),
            newest=newest,
            since=since,
        )
