"""Recorded filtered-stream payloads through the live relay into a real Spark job and parquet."""

import json
import threading
from pathlib import Path

import pandas as pd
import pytest
import responses

from ingest.relay import TweetBuffer
from ingest.replay import line_record
from ingest.twitter import run_stream
from stream.scoring import ScoringOptions
from tests.conftest import run_job_on_spool, tmp_job_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "twitter"
RULES = "https://api.twitter.com/2/tweets/search/stream/rules"
STREAM = "https://api.twitter.com/2/tweets/search/stream"


def test_live_stream_tweets_land_in_parquet_with_their_keyword(spark, service_url, tmp_path):
    # Each tweet is relayed twice, as after a reconnect: the job writes it once.
    buffer = TweetBuffer(100, overflow="drop-oldest")
    with responses.RequestsMock() as rsps:
        rsps.get(RULES, json=json.loads((FIXTURES / "rules_existing.json").read_text()))
        rsps.post(RULES, json=json.loads((FIXTURES / "rules_deleted.json").read_text()))
        rsps.post(RULES, json=json.loads((FIXTURES / "rules_added.json").read_text()))
        rsps.get(STREAM, body=(FIXTURES / "stream.jsonl").read_text())
        relayed = run_stream(
            "token", ["coffee", "tea"], lambda t: buffer.put(t.to_json_line()), threading.Event(), max_connections=1
        )
    assert relayed == 3
    lines = buffer.take(100, timeout=1)
    records = [line_record(line.rstrip(b"\n"), "api", 65_536) for line in lines + lines]

    config = tmp_job_config(
        tmp_path,
        scoring=ScoringOptions(service_url=service_url),
        model_version="m",
    )
    _, stats = run_job_on_spool(spark, records, config, 6, timeout=120)
    assert stats.rows == 3 and stats.duplicates == 3
    out = pd.read_parquet(tmp_path / "tweets").sort_values("id")
    assert out["id"].tolist() == ["1860000000000000001", "1860000000000000002", "1860000000000000003"]
    assert out["keyword"].tolist() == ["coffee", "tea", "coffee"]
    assert out["user"].tolist() == ["alice_dev", "bob", "chloe"]
    assert out["clean_text"].iloc[1] == "this tea is cold and awful"
    assert out["sentiment"].notna().all()
