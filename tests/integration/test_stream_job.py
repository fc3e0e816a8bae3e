"""The Spark job's transforms on small DataFrames, and the whole path end to end."""

import json

import pandas as pd
import pytest
import requests

from ingest.replay import replay_tweets
from ingest.spool import Record
from sentiment.labels import NeutralBand
from stream.cleaning import label_tweets
from stream.parsing import parse_lines
from stream.query import JobConfig
from stream.scoring import ScoringOptions, fetch_model_version
from stream.transforms import track_filter
from tests.conftest import SAMPLE, run_job_on_spool, tmp_job_config

pytestmark = pytest.mark.integration

GOOD = json.dumps({"id": "1", "created_at": "2009-04-07T05:19:45Z", "user": "u", "text": "hi", "keyword": None})
MALFORMED = {
    "this is not json": "not a valid JSON object",
    '{"id": "7", "user": "u"': "not a valid JSON object",
    '{"user": "u", "text": "no id"}': 'missing field "id"',
    '{"id": "8", "user": "u"}': 'missing field "text"',
    '{"id": "9", "text": "x", "created_at": "yesterday"}': '"created_at" is not an ISO 8601 timestamp: yesterday',
}


def test_parse_lines_gives_a_reason_for_each_bad_line(spark):
    lines = spark.createDataFrame([(GOOD,)] + [(raw,) for raw in MALFORMED], "value string")
    rows = {r["raw"]: r for r in parse_lines(lines).collect()}
    assert rows[GOOD]["reason"] is None and rows[GOOD]["id"] == "1"
    assert str(rows[GOOD]["created_at"]) == "2009-04-07 05:19:45"
    assert {raw: rows[raw]["reason"] for raw in MALFORMED} == MALFORMED


def test_label_band_in_spark_matches_python(spark):
    band = NeutralBand(0.4, 0.6)
    ps = [0.0, 0.3999, 0.4, 0.5, 0.6, 0.6001, 1.0]
    df = spark.createDataFrame([(p,) for p in ps], "p_positive double")
    got = [r["sentiment"] for r in label_tweets(df, band).collect()]
    assert got == [band.label(p) for p in ps]


def test_track_filter_is_case_insensitive(spark):
    df = spark.createDataFrame(
        [("1", "I like Coffee", None), ("2", "tea time", None), ("3", "COFFEE!", "java")],
        "id string, text string, keyword string",
    )
    kept, dropped = track_filter(df, ("coffee",))
    assert {(r["id"], r["keyword"]) for r in kept.collect()} == {("1", "coffee"), ("3", "java")}
    assert [r["id"] for r in dropped.collect()] == ["2"]


@pytest.mark.slow
def test_end_to_end_relay_spark_service_parquet(spark, service_url, tmp_path):
    tweets = list(replay_tweets(SAMPLE, limit=1000))
    malformed = list(MALFORMED)
    records = [Record(t.to_json_line().decode().strip()) for t in tweets]
    records[500:500] = [Record(raw) for raw in malformed]
    expected_lines = len(tweets) + len(malformed)

    config = tmp_job_config(
        tmp_path,
        scoring=ScoringOptions(service_url=service_url, batch_size=200),
        model_version_source=lambda: asked.append(1) or fetch_model_version(service_url, 30),
    )
    asked: list[int] = []
    query, stats = run_job_on_spool(spark, records, config, expected_lines, timeout=300)
    assert query.exception() is None
    info = requests.get(f"{service_url}/model", timeout=10).json()
    served = f"{info['name']}@{info['version']}"
    assert len(asked) == 1 and stats.model_version == served  # asked at the first batch, then kept

    out = pd.read_parquet(tmp_path / "tweets")
    # Every tweet id arrived exactly once.
    assert sorted(out["id"]) == sorted(t.id for t in tweets)
    assert set(out.columns) >= {
        "id",
        "created_at",
        "user",
        "keyword",
        "text",
        "clean_text",
        "p_positive",
        "sentiment",
        "model_version",
        "processed_at",
    }
    assert (out["model_version"] == served).all()

    # Every label agrees with the service's own answer for that text.
    texts = out["text"].tolist()
    answers = []
    for start in range(0, len(texts), 500):
        r = requests.post(f"{service_url}/predict/batch", json={"texts": texts[start : start + 500]}, timeout=120)
        answers += r.json()["results"]
    assert out["sentiment"].tolist() == [a["sentiment"] for a in answers]
    # Probabilities agree up to float noise from batching (padding differs between batches).
    assert out["p_positive"].tolist() == pytest.approx([a["p_positive"] for a in answers], abs=1e-4)
    assert out["sentiment"].nunique() >= 2

    # Malformed lines ended in quarantine with their reason.
    quarantine = pd.read_parquet(tmp_path / "quarantine")
    assert dict(zip(quarantine["raw"], quarantine["reason"], strict=True)) == MALFORMED


def test_clean_text_column_matches_python(spark):
    from sentiment.cleaning import clean_text
    from stream.cleaning import clean_tweets

    texts = ["@bob Loving #Spark http://t.co/x &amp; more!!", "WWW.ABC.COM ok"]
    df = spark.createDataFrame(list(enumerate(texts)), "i long, text string")
    got = [r["clean_text"] for r in clean_tweets(df).orderBy("i").collect()]
    assert got == [clean_text(t) for t in texts] == ["loving spark more", "ok"]


def test_the_socket_transport_still_works(spark, service_url, tmp_path):
    from ingest.relay import TweetBuffer, feed
    from tests.conftest import run_job_on_relay

    tweets = list(replay_tweets(SAMPLE, limit=50))
    buffer = TweetBuffer(100)
    feed(tweets, buffer)
    config = JobConfig(
        output=str(tmp_path / "tweets"),
        quarantine=str(tmp_path / "quarantine"),
        checkpoint=str(tmp_path / "checkpoint"),
        trigger_seconds=0,
        scoring=ScoringOptions(service_url=service_url),
    )
    query, stats = run_job_on_relay(spark, buffer, config, len(tweets), timeout=120)
    assert query.exception() is None
    assert sorted(pd.read_parquet(tmp_path / "tweets")["id"]) == sorted(t.id for t in tweets)
