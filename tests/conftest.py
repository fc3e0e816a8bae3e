"""Shared fixtures: one SparkSession, the bundled model, servers on 127.0.0.1 port 0, paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.replay import BUNDLED_SAMPLE as SAMPLE
from sentiment.labels import NeutralBand, confidence

ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """``$TWEETSENT_DATA`` or ``../shared/data``; None when neither exists."""
    env = os.environ.get("TWEETSENT_DATA")
    if env:
        return Path(env)
    candidate = ROOT.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def sentiment140_files() -> list[Path]:
    """The shared Sentiment140 files, or the bundled sample when there is no shared data."""
    root = shared_data_dir()
    if root is None:
        return [SAMPLE]
    return sorted((root / "sentiment140").glob("*.csv"))


@pytest.fixture(scope="session")
def spark():
    from sentiment.config import Config
    from stream.session import build_spark

    session = build_spark(Config(), master="local[2]", app_name="tweet-sentiment-tests", ui=False)
    yield session
    session.stop()


class FakePrediction:
    def __init__(self, p: float, band: NeutralBand) -> None:
        self.p = p
        self.band = band

    def to_dict(self) -> dict:
        return {"sentiment": self.band.label(self.p), "p_positive": self.p, "confidence": confidence(self.p)}


class FakePredictor:
    """Scores a text by the share of the words 'good' among 'good' and 'bad' (0.5 when neither)."""

    def __init__(self, band: NeutralBand = NeutralBand()) -> None:
        self.band = band
        self.calls: list[list[str]] = []

    def predict(self, texts: list[str]) -> list[FakePrediction]:
        self.calls.append(list(texts))
        out = []
        for t in texts:
            words = t.lower().split()
            good, bad = words.count("good"), words.count("bad")
            out.append(FakePrediction(0.5 if good + bad == 0 else good / (good + bad), self.band))
        return out

    def health(self) -> dict:
        return {"status": "ok"}

    def warm_up(self) -> None:
        pass

    def describe(self) -> dict:
        return {
            "name": "fake",
            "version": "0",
            "preprocessing": "light",
            "precision": "none",
            "neutral_band": self.band.to_dict(),
        }


@pytest.fixture
def fake_predictor() -> FakePredictor:
    return FakePredictor()


@pytest.fixture(scope="session")
def predictor():
    """The bundled model, loaded once for the whole session."""
    from model_api.model.predictor import SentimentPredictor

    return SentimentPredictor.from_pretrained(precision="fp32")


def tmp_job_config(tmp_path: Path, **fields):
    """A ``stream.query.JobConfig`` whose spool, outputs and checkpoint are in ``tmp_path``, with
    micro-batches as fast as they go; ``fields`` set the rest (``scoring``) or override these."""
    from stream.query import JobConfig

    folders = {
        "spool": str(tmp_path / "spool"),
        "output": str(tmp_path / "tweets"),
        "quarantine": str(tmp_path / "quarantine"),
        "checkpoint": str(tmp_path / "checkpoint"),
    }
    return JobConfig(**{**folders, "trigger_seconds": 0, **fields})


def run_job_on_relay(spark, buffer, config, lines: int, timeout: float):
    """Serve ``buffer`` from a relay on a free loopback port, run the job on it until ``lines``
    input lines are handled (or ``timeout``), stop it; return the stopped query and its stats."""
    import dataclasses

    from ingest.relay import SocketRelay
    from stream.query import JobStats, build_query, drive, read_source

    stats = JobStats()
    with SocketRelay("127.0.0.1", 0, buffer) as relay:
        config = dataclasses.replace(config, transport="socket", port=relay.port)
        query = build_query(read_source(spark, config), config, stats).start()
        try:
            drive(query, stats, lines, timeout)
        finally:
            query.stop()
    return query, stats


def run_job_on_spool(spark, records, config, lines: int, timeout: float):
    """Write ``records`` (``ingest.spool.Record``) to the spool folder ``config.spool``, run the job
    on it until ``lines`` lines are handled (or ``timeout``), stop it; return the query and its stats."""
    import dataclasses

    from ingest.spool import Spool
    from stream.query import JobStats, ProgressListener, build_query, drive, read_source

    with Spool(config.spool, segment_records=100) as spool:
        spool.append(records)
    config = dataclasses.replace(config, transport="spool")
    stats = JobStats()
    listener = ProgressListener(stats)  # counts the duplicates dropped
    spark.streams.addListener(listener)
    query = build_query(read_source(spark, config), config, stats).start()
    try:
        drive(query, stats, lines, timeout)
    finally:
        query.stop()
        spark.streams.removeListener(listener)
    return query, stats


@pytest.fixture(scope="session")
def service_url(predictor) -> Iterator[str]:
    """The service's front with the bundled model, on a loopback port."""
    from tests.support.front import front, serve_front

    yield from serve_front(front(None, predictor))
