"""The outputs explain themselves: columns before the first batch, and a clear stop when files were deleted."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from ingest.spool import Record
from sentiment.config import TrendsConfig
from sentiment.parquet_folder import read_folder
from sentiment.schema import ALERTS_COLUMNS, OUTPUT_COLUMNS, QUARANTINE_COLUMNS, TRENDS_COLUMNS
from stream.job import run
from stream.outputs import missing_outputs, prepare_outputs
from stream.query import JobConfig, JobStats
from stream.scoring import ScoringOptions
from stream.summary import summary
from stream.trends import TrendsJob
from tests.conftest import FakePredictor, run_job_on_spool, tmp_job_config

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake_service_url():
    from tests.support.front import front, serve_front

    yield from serve_front(front(None, FakePredictor()))


def job_config(tmp_path, service_url: str = "http://127.0.0.1:9") -> JobConfig:
    trends = TrendsJob(
        tweets=str(tmp_path / "tweets"),
        checkpoint=str(tmp_path / "ck" / "trends"),
        config=TrendsConfig(),
        output=str(tmp_path / "trends"),
        alerts=str(tmp_path / "alerts"),
    )
    return tmp_job_config(
        tmp_path,
        checkpoint=str(tmp_path / "ck" / "tweets"),
        scoring=ScoringOptions(service_url=service_url),
        model_version="m",
        trends=trends,
    )


def test_an_output_folder_with_no_batch_yet_reads_as_empty_with_its_columns(spark, tmp_path):
    job = job_config(tmp_path)
    assert prepare_outputs(spark, job) is None
    tweets = pd.read_parquet(job.output)
    assert tweets.empty and list(tweets.columns) == list(OUTPUT_COLUMNS)
    assert pd.read_parquet(job.output, columns=["sentiment"]).empty  # the summary's read, once a traceback
    assert list(pd.read_parquet(job.quarantine).columns) == list(QUARANTINE_COLUMNS)
    assert list(pd.read_parquet(job.trends.output).columns) == list(TRENDS_COLUMNS)
    assert list(pd.read_parquet(job.trends.alerts).columns) == list(ALERTS_COLUMNS)
    assert list(read_folder(job.trends.output).columns) == list(TRENDS_COLUMNS)
    assert summary(tmp_path / "tweets") == f"pipeline: no rows yet in {tmp_path / 'tweets'}"


def test_the_first_batch_reads_beside_the_columns_file_by_date_and_by_tweet_time(spark, fake_service_url, tmp_path):
    job = job_config(tmp_path, fake_service_url)
    prepare_outputs(spark, job)
    lines = [
        json.dumps({"id": f"t{i}", "created_at": f"2009-04-0{i + 1}T10:00:00Z", "user": "u", "text": "good day"})
        for i in range(3)
    ]
    _, stats = run_job_on_spool(spark, [Record(line) for line in lines], job, 3, timeout=120)
    assert stats.rows == 3
    tweets = pd.read_parquet(job.output)
    assert sorted(tweets["id"]) == ["t0", "t1", "t2"]
    today = str(tweets["date"].iloc[0])
    assert len(pd.read_parquet(job.output, filters=[("date", "=", today)])) == 3
    since = pd.read_parquet(job.output, filters=[("created_at", ">=", pd.Timestamp("2009-04-02"))])
    assert sorted(since["id"]) == ["t1", "t2"]


def test_a_deleted_output_with_a_kept_checkpoint_is_reported_not_skipped(spark, fake_service_url, tmp_path):
    job = job_config(tmp_path, fake_service_url)
    line = json.dumps({"id": "t1", "created_at": "2009-04-06T22:19:45Z", "user": "u", "text": "good"})
    run_job_on_spool(spark, [Record(line)], job, 1, timeout=120)
    assert missing_outputs(job) is None
    shutil.rmtree(job.output)  # rm -rf output/tweets, the checkpoint kept

    problem = prepare_outputs(spark, job)
    assert problem is not None
    assert job.output in problem and "(batch 0," in problem and "--start-over" in problem
    assert job.quarantine not in problem  # nothing of it was written, nothing is missing
    assert run(spark, job, JobStats()) == 2  # the job stops before starting its queries
