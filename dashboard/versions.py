"""A keyword's trend split by model version, read from ``output/tweets``.

Every scored tweet carries the ``model_version`` that scored it, and the service can swap its model
under a running job, so one keyword's rows may come from two versions or more. The trends table
does not keep the version; the tweets do. :class:`VersionSums` opens each batch file of the tweets
once, reads only the five columns it needs (:data:`VERSION_COLUMNS`), and keeps nothing of it but its
sums: one row per keyword, model version and trends window (the counts, the sum of the scores, the
first tweet's time). A refresh opens only the files that are new, and the page never holds every
tweet. :func:`of_keyword` turns one keyword's sums into trends rows per version, which
:func:`dashboard.charts.view` buckets as it does the trends.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd

from dashboard.resolution import COUNT_COLUMNS
from sentiment.parquet_folder import ParquetFile, list_parquet_files, read_tables, tables_to_pandas
from sentiment.trends import LABEL_COUNTS, NO_KEYWORD, as_utc

# What the split needs of a tweet: the series, the time its window is taken from, the score and label.
VERSION_COLUMNS = ("keyword", "created_at", "p_positive", "sentiment", "model_version")
UNKNOWN_VERSION = "(unknown)"  # tweets written without a model_version
KEYS = ["keyword", "model_version", "window_start"]
SUMS = [*COUNT_COLUMNS, "score_sum"]
FILES_PER_CHUNK = 200  # files summed together on a first read, so that it never holds all their tweets


def empty_sums() -> pd.DataFrame:
    utc = pd.DatetimeTZDtype(tz="UTC")
    types = {"keyword": object, "model_version": object, "window_start": utc, "score_sum": "float64", "first_at": utc}
    return pd.DataFrame({c: pd.Series(dtype=types.get(c, "int64")) for c in [*KEYS, *SUMS, "first_at"]})


def _merge(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows of the same keyword, version and window made one: counts and scores summed, the first time kept."""
    if rows.empty:
        return empty_sums()
    how = {**{c: "sum" for c in SUMS}, "first_at": "min"}
    out = rows.groupby(KEYS, sort=False).agg(how).reset_index()
    out[list(COUNT_COLUMNS)] = out[list(COUNT_COLUMNS)].astype("int64")
    return out


def sum_by_version(tweets: pd.DataFrame, window: pd.Timedelta) -> pd.DataFrame:
    """One row per keyword, model version and window of ``tweets`` (windows aligned on the epoch, as
    the job's are): ``n``, the label counts, ``score_sum`` and ``first_at``, the first tweet's time.

    Tweets without a keyword count under ``(no keyword)``, as in the trends; tweets without a
    version under ``(unknown)``; tweets without a time are left out, as the trends leave them out.
    """
    if tweets.empty:
        return empty_sums()
    tweets = tweets.reindex(columns=list(VERSION_COLUMNS))
    created = as_utc(tweets["created_at"])
    rows = pd.DataFrame(
        {
            "keyword": tweets["keyword"].fillna(NO_KEYWORD).astype(str),
            "model_version": tweets["model_version"].fillna(UNKNOWN_VERSION).astype(str),
            "window_start": created.dt.floor(window),
            "n": 1,
            "score_sum": tweets["p_positive"].astype("float64"),
            "first_at": created,
        }
    )
    for label, column in LABEL_COUNTS.items():
        rows[column] = (tweets["sentiment"] == label).astype("int64").to_numpy()
    return _merge(rows.dropna(subset=["window_start"]))


class VersionSums:
    """The tweets of a growing folder summed by keyword, model version and window; keep one per folder.

    A file is read once. A file that cannot be read yet (being written) is tried again once it
    changes; a file already summed that changes or goes away makes the sums start again.
    Thread-safe, so one instance serves every page of a dashboard.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._window: pd.Timedelta | None = None
        self._summed: dict[str, ParquetFile] = {}
        self._failed: dict[str, ParquetFile] = {}
        self._sums = empty_sums()
        self._lock = threading.Lock()

    def read(self, window: pd.Timedelta) -> pd.DataFrame:
        """The sums of every readable tweet now in the folder, in windows of ``window``. Do not modify
        the result: it is shared."""
        with self._lock:
            files = {f.path: f for f in list_parquet_files(self.folder)}
            if window != self._window or any(files.get(path) != f for path, f in self._summed.items()):
                self._window, self._summed, self._failed, self._sums = window, {}, {}, empty_sums()
            new = [f for path, f in files.items() if path not in self._summed and self._failed.get(path) != f]
            parts = [self._sums]
            for start in range(0, len(new), FILES_PER_CHUNK):
                chunk = new[start : start + FILES_PER_CHUNK]
                tables = read_tables([f.path for f in chunk], VERSION_COLUMNS)
                for f, table in zip(chunk, tables, strict=True):
                    (self._failed if table is None else self._summed)[f.path] = f
                read = [t for t in tables if t is not None and t.num_rows]
                if read:
                    parts.append(sum_by_version(tables_to_pandas(read), window))
            if len(parts) > 1:
                self._sums = _merge(pd.concat([p for p in parts if not p.empty], ignore_index=True))
            return self._sums


def of_keyword(
    sums: pd.DataFrame, keyword: str, window: pd.Timedelta, since: pd.Timestamp | None = None
) -> pd.DataFrame:
    """``keyword``'s windows from ``since`` on, one row per model version and window, as trends rows:
    ``model_version``, ``window_start``, ``window_end``, the counts, ``mean_p_positive``,
    ``negative_share``, and ``first_at`` (the version's first tweet in the window); sorted by time."""
    rows = sums[sums["keyword"] == keyword]
    if since is not None:
        rows = rows[rows["window_start"] >= since]
    rows = rows.drop(columns="keyword").sort_values(["window_start", "model_version"]).reset_index(drop=True)
    rows["window_end"] = rows["window_start"] + window
    n = rows["n"].where(rows["n"] > 0)
    rows["mean_p_positive"] = rows.pop("score_sum") / n
    rows["negative_share"] = rows["n_negative"] / n
    return rows


def version_order(rows: pd.DataFrame) -> pd.Series:
    """The first tweet of each model version in ``rows`` (:func:`of_keyword`'s), earliest first: the
    order in which the versions took over."""
    return rows.groupby("model_version")["first_at"].min().sort_values()


def takeovers(rows: pd.DataFrame) -> pd.DataFrame:
    """Where each version after the first took over: ``model_version`` and ``first_at``, its first tweet."""
    return version_order(rows).iloc[1:].rename_axis("model_version").reset_index()
