"""A relay clock that jumps back an hour: every line is accounted for, and --stop-after is reached.

Measured with Spark 4: ``dropDuplicatesWithinWatermark`` passes lines older than its watermark on
(the watermark only evicts state), so none is lost; should a Spark drop them, the job counts them
(``JobStats.stale``, from ``numRowsDroppedByWatermark``) and the totals still add up.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ingest.spool import Record, Spool
from sentiment.spool_format import segment_name
from stream.query import JobStats, ProgressListener, build_query, drive, read_source
from stream.scoring import ScoringOptions
from tests.conftest import FakePredictor, tmp_job_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def fake_service():
    from tests.support.front import front, serve_front

    yield from serve_front(front(None, FakePredictor()))


def tweet(i: int) -> str:
    return json.dumps({"id": f"t{i}", "created_at": "2026-11-20T10:00:00Z", "user": "u", "text": f"good {i}"})


def run(spark, tmp_path, service: str, lines: int) -> tuple[JobStats, bool]:
    config = tmp_job_config(
        tmp_path,
        max_files_per_trigger=1,  # one segment per batch: the hour-old lines come after the watermark moved
        scoring=ScoringOptions(service_url=service),
        model_version="m",
    )
    stats = JobStats()
    listener = ProgressListener(stats)
    spark.streams.addListener(listener)
    query = build_query(read_source(spark, config), config, stats).start()
    try:
        reached = drive(query, stats, lines, timeout=90)
    finally:
        query.stop()
        spark.streams.removeListener(listener)
    return stats, reached


def test_a_clock_jumping_back_an_hour_loses_no_line_and_the_counts_add_up(spark, tmp_path, fake_service):
    # Two segments as a relay whose clock jumped back an hour between them would have written them.
    spool = tmp_path / "spool"
    spool.mkdir()
    for first, at in ((0, NOW), (10, NOW - 3600)):
        envelopes = [{"offset": first + i, "at": at, "line": tweet(first + i)} for i in range(10)]
        (spool / segment_name(first)).write_text("".join(json.dumps(e) + "\n" for e in envelopes))
    stats, reached = run(spark, tmp_path, fake_service, lines=20)
    assert reached, f"stop-after 20 not reached: {stats}"
    assert stats.rows + stats.quarantined + stats.duplicates + stats.filtered + stats.stale == 20
    written = pd.read_parquet(tmp_path / "tweets")["id"]
    assert written.nunique() == len(written) == stats.rows
    assert stats.batches >= 2  # the hour-old lines came in a batch after the watermark had moved on


def test_the_spool_keeps_its_times_from_going_back_so_nothing_is_dropped(spark, tmp_path, fake_service):
    with Spool(tmp_path / "spool", segment_records=10) as spool:
        spool.append([Record(tweet(i)) for i in range(10)], now=NOW)
        spool.append([Record(tweet(i)) for i in range(10, 20)], now=NOW - 3600)  # the clock jumped back
    stats, reached = run(spark, tmp_path, fake_service, lines=20)
    assert reached and (stats.rows, stats.stale) == (20, 0)
    assert pd.read_parquet(tmp_path / "tweets")["id"].nunique() == 20
