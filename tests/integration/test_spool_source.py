"""The job's query over the spool's source (stream.spool_source) with a real SparkSession: every
record once, across restarts, and a checkpoint made by Spark's file source going on with it."""

from __future__ import annotations

import json
import logging
from collections import Counter

import pandas as pd
import pytest

from ingest.spool import Record, Spool
from sentiment.spool_format import archive_dir
from stream.query import JobStats, build_query, drive, file_source
from stream.scoring import ScoringOptions
from tests.conftest import FakePredictor, run_job_on_spool, tmp_job_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def fake_service():
    from tests.support.front import front, serve_front

    yield from serve_front(front(None, FakePredictor()))


def tweets(prefix: str, n: int) -> list[Record]:
    return [Record(json.dumps({"id": f"{prefix}{i}", "user": "u", "text": f"good {i}"})) for i in range(n)]


def config_for(tmp_path, service: str):
    scoring = ScoringOptions(service_url=service)
    return tmp_job_config(tmp_path, scoring=scoring, model_version="m", max_files_per_trigger=2)


def written_ids(tmp_path) -> Counter:
    return Counter(pd.read_parquet(tmp_path / "tweets")["id"])


def test_every_record_once_across_a_restart_and_committed_segments_archived(spark, tmp_path, fake_service):
    config = config_for(tmp_path, fake_service)
    malformed = [Record("not json"), Record(json.dumps({"id": "a1", "text": "again"}))]  # a duplicate id
    query, first = run_job_on_spool(spark, tweets("a", 250) + malformed, config, 252, timeout=300)
    assert query.exception() is None
    assert (first.rows, first.quarantined, first.duplicates) == (250, 1, 1)
    assert first.batches >= 2  # at most 2 segments (of 100 lines) a batch
    query, second = run_job_on_spool(spark, tweets("b", 150), config, 150, timeout=300)  # resumes the checkpoint
    assert query.exception() is None and second.seen == 150
    assert written_ids(tmp_path) == Counter({f"{p}{i}": 1 for p, n in (("a", 250), ("b", 150)) for i in range(n)})
    spool, archived = tmp_path / "spool", sorted(p.name for p in archive_dir(tmp_path / "spool").glob("seg-*"))
    assert archived[0] == "seg-000000000000.jsonl" and not (set(archived) & {p.name for p in spool.glob("seg-*")})
    assert not (tmp_path / "checkpoint" / "sources" / "0").exists()  # no file list: offsets are positions


def test_a_checkpoint_of_the_file_source_goes_on_with_it_and_says_so(spark, tmp_path, fake_service, caplog):
    config = config_for(tmp_path, fake_service)
    with Spool(config.spool, segment_records=100) as spool:
        spool.append(tweets("a", 120))
    stats = JobStats()
    query = build_query(file_source(spark, tmp_path / "spool", 2), config, stats).start()  # as the job did before
    try:
        assert drive(query, stats, 120, timeout=300)
    finally:
        query.stop()
    assert any((tmp_path / "checkpoint" / "sources" / "0").iterdir())
    with caplog.at_level(logging.WARNING, logger="stream"):
        query, resumed = run_job_on_spool(spark, tweets("b", 80), config, 80, timeout=300)
    assert query.exception() is None and resumed.seen == 80
    assert "predates the spool's bounded source" in caplog.text and "--start-over" in caplog.text
    assert written_ids(tmp_path) == Counter({f"{p}{i}": 1 for p, n in (("a", 120), ("b", 80)) for i in range(n)})


def test_a_folder_of_per_batch_parquet_files_is_read_as_arrow_batches_and_deleted(spark, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    feed = tmp_path / "feed"
    feed.mkdir()
    for batch in range(3):
        table = pa.table({"score": [0.5] * 4, "id": [f"{batch}-{i}" for i in range(4)]})
        pq.write_table(table, feed / f"feed-{batch:010d}.parquet")
    got: list[tuple[int, str]] = []
    query = (
        spark.readStream.format("numbered_files")
        .schema("id string")
        .options(path=str(feed), pattern=r"feed-(\d{10})\.parquet", format="parquet", archive="")
        .option("maxFilesPerTrigger", 1)
        .load()
        .writeStream.option("checkpointLocation", str(tmp_path / "checkpoint"))
        .foreachBatch(lambda batch, batch_id: got.extend((batch_id, r["id"]) for r in batch.collect()))
        .start()
    )
    try:
        query.processAllAvailable()
    finally:
        query.stop()
    assert sorted(got) == [(b, f"{b}-{i}") for b in range(3) for i in range(4)]  # one file a batch
    assert [p.name for p in feed.iterdir()] == ["feed-0000000002.parquet"]  # the last batch's, until the next commit
