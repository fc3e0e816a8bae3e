"""The job against a real service whose limits its requests outgrow: requests split until they fit, a
tweet the service refuses alone goes to the quarantine with the reason, and the batch goes on."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from ingest.spool import Record
from sentiment.config import Config
from stream.scoring import ScoringOptions
from tests.conftest import FakePredictor, run_job_on_spool, tmp_job_config
from tests.support.front import front, serve_front

pytestmark = pytest.mark.integration

LIMIT = 8192  # the service's body limit here; the job's budget is larger, as if it were set for another


@pytest.fixture
def small_service():
    config = dataclasses.replace(Config(), service=dataclasses.replace(Config().service, max_body_bytes=LIMIT))
    yield from serve_front(front(config, FakePredictor()))


def test_refused_tweets_are_quarantined_with_the_reason_and_the_rest_scored_once(spark, small_service, tmp_path):
    tweets = [{"id": str(i), "text": "good day" if i % 2 else "bad day"} for i in range(60)]
    big = [{"id": f"big-{i}", "text": "漢" * 2000} for i in range(3)]  # 12 KB of JSON each: over the limit alone
    lines = [json.dumps(t) for t in tweets[:20] + big[:2] + tweets[20:] + big[2:]]
    config = tmp_job_config(
        tmp_path,
        scoring=ScoringOptions(service_url=small_service, batch_size=64, max_request_bytes=1 << 20),
        outage_limit_seconds=15,
    )
    query, stats = run_job_on_spool(spark, [Record(line) for line in lines], config, len(lines), timeout=120)
    assert query.exception() is None
    out = pd.read_parquet(tmp_path / "tweets")
    assert sorted(out["id"], key=int) == [t["id"] for t in tweets]
    quarantine = pd.read_parquet(tmp_path / "quarantine")
    assert sorted(quarantine["raw"]) == sorted(json.dumps(t) for t in big)
    assert all("refused" in r and "HTTP 413" in r for r in quarantine["reason"]), quarantine["reason"].tolist()
    assert stats.rows == 60 and stats.quarantined == 3
