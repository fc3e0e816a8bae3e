"""A synthetic output folder (tweets, trends, alerts) shaped as the pipeline writes it, with one negative spike.

The browser tests, the report's tests and the benchmark use it; so can
anyone who wants to see the dashboard without running the pipeline. With ``swap_at`` the model is
swapped mid-stream, as the service can do under a running job: from that minute on, every keyword's
tweets carry another ``model_version`` and a shifted score.

Usage: python -m dashboard.demo --output-root /tmp/demo-output [--minutes 60] [--tweets-per-minute 40] [--swap-at 25]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment.config import TrendsConfig
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE, NeutralBand
from sentiment.logs import setup_logging
from sentiment.trends import find_alerts, trends_from_tweets

log = logging.getLogger(__name__)
TEXTS = {
    NEGATIVE: ("{k} is down again, so annoying", "worst {k} update ever", "gave up on {k} today, nothing works"),
    NEUTRAL: ("reading about {k} this morning", "anyone tried the new {k} docs?", "{k} meetup tonight"),
    POSITIVE: ("loving the new {k} release!", "{k} just saved my day", "great talk about {k}, thanks all"),
}


@dataclass(frozen=True)
class Demo:
    """What to generate. Each keyword has its own volume and usual negative share."""

    keywords: dict[str, tuple[int, float]] = field(
        default_factory=lambda: {"python": (40, 0.2), "rust": (25, 0.3), "weather": (15, 0.45)}
    )  # keyword: (tweets per minute, usual negative share)
    minutes: int = 40
    start: pd.Timestamp = pd.Timestamp("2026-11-28 09:00", tz="UTC")
    spike: tuple[str, int] | None = ("python", 35)  # keyword and minute where negatives jump to spike_share
    spike_share: float = 0.8
    rows_per_file: int = 500  # tweets per batch file, as one micro-batch of the job
    seed: int = 0
    version: str = "demo"  # the model_version of every tweet (before the swap, if any)
    swap_at: int | None = None  # minute from which tweets are scored by swap_version (None: no swap)
    swap_version: str = "demo-2"
    swap_shift: float = 0.15  # added to p_positive by the swapped-in model (then kept within 0.01 to 0.99)

    def __post_init__(self) -> None:
        if self.swap_at is not None and not 0 < self.swap_at < self.minutes:
            raise ValueError(f"swap_at must be a minute after the first and before {self.minutes}, got {self.swap_at}")
        if self.swap_at is not None and self.swap_version == self.version:
            raise ValueError(f"swap_version must differ from version, both are {self.version!r}")


def make_tweets(demo: Demo, band: NeutralBand | None = None) -> pd.DataFrame:
    """The tweets of ``demo`` with every column of ``output/tweets``, sorted by arrival."""
    band = band or NeutralBand()
    rng = np.random.default_rng(demo.seed)
    frames = []
    for keyword, (rate, negative_share) in demo.keywords.items():
        minute = np.repeat(np.arange(demo.minutes), rate)
        share = np.full(len(minute), negative_share)
        if demo.spike is not None and demo.spike[0] == keyword:
            share[minute == demo.spike[1]] = demo.spike_share
        negative = rng.random(len(minute)) < share
        p = np.where(
            negative, rng.uniform(0.02, band.low - 0.01, len(minute)), rng.uniform(band.low, 0.98, len(minute))
        )
        seconds = rng.uniform(0, 60, len(minute))
        frames.append(pd.DataFrame({"keyword": keyword, "minute": minute, "seconds": seconds, "p_positive": p}))
    df = pd.concat(frames, ignore_index=True)
    swapped = df["minute"] >= demo.swap_at if demo.swap_at is not None else pd.Series(False, index=df.index)
    df["model_version"] = np.where(swapped, demo.swap_version, demo.version)
    df.loc[swapped, "p_positive"] = (df.loc[swapped, "p_positive"] + demo.swap_shift).clip(0.01, 0.99)
    df["created_at"] = demo.start + pd.to_timedelta(df.pop("minute") * 60 + df.pop("seconds"), unit="s")
    df["created_at"] = df["created_at"].dt.floor("s")
    df = df.sort_values("created_at", kind="stable").reset_index(drop=True)
    df["sentiment"] = np.where(
        df.p_positive < band.low, NEGATIVE, np.where(df.p_positive > band.high, POSITIVE, NEUTRAL)
    )
    template = rng.integers(0, 3, len(df))
    df["text"] = [TEXTS[label][t].format(k=k) for label, t, k in zip(df.sentiment, template, df.keyword, strict=True)]
    df["clean_text"] = df["text"].str.lower()
    df["id"] = (10**15 + np.arange(len(df))).astype(str)
    df["user"] = "user" + (rng.integers(0, 5000, len(df))).astype(str)
    df["relayed_at"] = df["created_at"] + pd.Timedelta(milliseconds=50)
    df["processed_at"] = df["created_at"] + pd.Timedelta(seconds=2)
    columns = ["id", "created_at", "user", "keyword", "text", "clean_text", "p_positive", "sentiment"]
    return df[[*columns, "model_version", "relayed_at", "processed_at"]]


def _write(table: pa.Table, path: Path, mtime: pd.Timestamp) -> None:
    """Write as the job does (to a hidden name, then renamed into place), with the batch's time as mtime."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name)
    pq.write_table(table, tmp)
    ns = mtime.value
    os.utime(tmp, ns=(ns, ns))
    tmp.rename(path)


def write_demo_output(root: str | Path, demo: Demo | None = None, config: TrendsConfig | None = None) -> pd.DataFrame:
    """Write ``tweets/``, ``trends/`` and ``alerts/`` under ``root``; return the trends written.

    Tweets go in files of ``rows_per_file`` under ``date=YYYY-MM-DD/``; trends one file per minute
    (the windows that closed then); alerts one file per minute that had any.
    """
    demo = demo or Demo()
    config = config or TrendsConfig()
    root = Path(root)
    tweets = make_tweets(demo)
    for batch, start in enumerate(range(0, len(tweets), demo.rows_per_file)):
        rows = tweets.iloc[start : start + demo.rows_per_file]
        last = rows["processed_at"].iloc[-1]
        path = root / "tweets" / f"date={last:%Y-%m-%d}" / f"batch-{batch:08d}.parquet"
        _write(pa.Table.from_pandas(rows, preserve_index=False), path, last)
    trends = trends_from_tweets(tweets)
    alerts = find_alerts(trends, None, config)
    for window, rows in trends.groupby("window_start"):
        _write(
            pa.Table.from_pandas(rows, preserve_index=False),
            root / "trends" / f"batch-{window:%Y%m%d%H%M}.parquet",
            window,
        )
    for window, rows in alerts.groupby("window_start"):
        _write(
            pa.Table.from_pandas(rows, preserve_index=False),
            root / "alerts" / f"batch-{window:%Y%m%d%H%M}.parquet",
            window,
        )
    log.info("wrote %d tweets, %d trends rows and %d alerts under %s", len(tweets), len(trends), len(alerts), root)
    return trends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", required=True, help="folder to write tweets/, trends/ and alerts/ into")
    parser.add_argument("--minutes", type=int, default=Demo.minutes)
    parser.add_argument("--tweets-per-minute", type=int, default=0, help="per keyword; 0 keeps each keyword's own")
    parser.add_argument("--swap-at", type=int, default=None, help="minute from which another model version scores")
    args = parser.parse_args(argv)
    setup_logging()
    if args.minutes < 10:
        parser.error(f"--minutes must be at least 10 (a baseline before the spike), got {args.minutes}")
    demo = Demo()
    keywords = {k: (args.tweets_per_minute or rate, share) for k, (rate, share) in demo.keywords.items()}
    spike = ("python", min(35, args.minutes - 5))
    if args.swap_at is not None and not 0 < args.swap_at < args.minutes:
        parser.error(f"--swap-at must be between 1 and {args.minutes - 1} (--minutes), got {args.swap_at}")
    demo = dataclasses.replace(demo, minutes=args.minutes, keywords=keywords, spike=spike, swap_at=args.swap_at)
    write_demo_output(args.output_root, demo)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
