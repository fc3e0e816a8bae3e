"""The trends query on a real SparkSession and the real model service: windows, one alert, late tweets."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from ingest.spool import Record, Spool
from sentiment.config import TrendsConfig
from stream.query import JobStats, ProgressListener, build_query, read_source
from stream.scoring import ScoringOptions
from stream.trends import TrendsJob, build_trends_query, close_windows
from tests.conftest import tmp_job_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HAPPY = "I love this so much, what a wonderful happy day"
SAD = "I hate this, it is awful and I feel terrible"
MINUTES, PER_MINUTE, SPIKE = 12, 25, 9


def tweet(i: int, minute: int, second: int, text: str, keyword: str = "coffee") -> Record:
    created = f"2026-11-01T10:{minute:02d}:{second:02d}Z"
    return Record(json.dumps({"id": f"t{i}", "created_at": created, "user": "u", "text": text, "keyword": keyword}))


class Receiver:
    """A webhook receiver on loopback that keeps every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                outer.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def run(spark, tmp_path, service_url, records: list[Record], webhook: str = "", late: list[Record] = ()):
    trends_config = TrendsConfig(min_count=20, baseline_windows=30, min_baseline_windows=5, webhook_url=webhook)
    job = TrendsJob(
        tweets=str(tmp_path / "tweets"),
        checkpoint=str(tmp_path / "ck" / "trends"),
        config=trends_config,
        output=str(tmp_path / "trends"),
        alerts=str(tmp_path / "alerts"),
    )
    config = tmp_job_config(
        tmp_path,
        quarantine=str(tmp_path / "q"),
        checkpoint=str(tmp_path / "ck" / "tweets"),
        scoring=ScoringOptions(service_url=service_url),
        model_version="m",
        trends=job,  # the tweets' sink feeds the trends query
    )
    stats = JobStats()
    listener = ProgressListener(stats)
    spark.streams.addListener(listener)
    spool = Spool(config.spool, segment_records=100)
    spool.open()
    query = build_query(read_source(spark, config), config, stats).start()
    trends = build_trends_query(spark, job, 0, 20).start()
    try:
        for part in (records, late):
            if part:
                spool.append(part)
                spool.flush()
                query.processAllAvailable()
                trends.processAllAvailable()
        close_windows(spark, trends, job)
        wait_for(lambda: not late or stats.late >= len(late) // 2)
    finally:
        query.stop()
        trends.stop()
        spark.streams.removeListener(listener)
    return job, stats


def test_windows_count_every_tweet_and_one_spike_raises_one_alert(spark, service_url, tmp_path):
    receiver = Receiver()
    records, i = [], 0
    for minute in range(MINUTES):
        negatives = 20 if minute == SPIKE else 5
        for k in range(PER_MINUTE):
            records.append(tweet(i, minute, k * 2, SAD if k < negatives else HAPPY))
            i += 1
    job, _ = run(spark, tmp_path, service_url, records, webhook=receiver.url)

    trends = pd.read_parquet(job.output).sort_values("window_start").reset_index(drop=True)
    assert len(trends) == MINUTES and (trends["n"] == PER_MINUTE).all()
    assert trends["keyword"].unique().tolist() == ["coffee"]
    assert trends.loc[SPIKE, "n_negative"] == 20 and trends.loc[SPIKE, "negative_share"] == pytest.approx(0.8)
    assert (trends.drop(index=SPIKE)["n_negative"] == 5).all()

    alerts = pd.read_parquet(job.alerts)
    assert len(alerts) == 1
    assert alerts["window_start"].iloc[0] == pd.Timestamp(f"2026-11-01 10:{SPIKE:02d}:00")
    wait_for(lambda: receiver.bodies)
    assert [a["window_start"][:16] for b in receiver.bodies for a in b["alerts"]] == [f"2026-11-01T10:{SPIKE:02d}"]
    receiver.server.shutdown()


def test_late_tweets_are_counted_not_lost_silently(spark, service_url, tmp_path):
    on_time = [tweet(i, minute, 0, HAPPY) for i, minute in enumerate(range(10))]
    # Once 10:09 is seen the watermark is 10:07: a tweet of 10:00 is late, one of 10:09:30 is not.
    late = [tweet(100, 0, 30, SAD), tweet(101, 9, 30, SAD)]
    job, stats = run(spark, tmp_path, service_url, on_time, late=late)
    trends = pd.read_parquet(job.output)
    assert trends["n"].sum() == 11  # every tweet but the late one
    assert stats.late == 1
    assert len(pd.read_parquet(job.tweets)) == 12  # the late tweet is still in output/tweets
