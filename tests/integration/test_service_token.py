"""Every call the project makes to its own service carries the bearer token: with
``service.open_paths = ""`` (no path open), the job, ``stream.health`` and ``GET /model`` all work."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

from ingest.spool import Record
from sentiment.config import TOKEN_ENV, Config
from stream import health
from stream.scoring import ScoringOptions, fetch_model_version
from tests.conftest import FakePredictor, run_job_on_spool, tmp_job_config
from tests.support.front import front, serve_front

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token"


@pytest.fixture
def closed_service(monkeypatch):
    """The Flask app with a token and no open path, on a loopback port."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    config = dataclasses.replace(Config(), service=dataclasses.replace(Config().service, open_paths=""))
    yield from serve_front(front(config, FakePredictor()))


def test_health_command_sends_the_token(closed_service, monkeypatch, capsys):
    assert health.main([closed_service]) == 0
    monkeypatch.delenv(TOKEN_ENV)
    assert health.main([closed_service]) == 1
    assert "HTTP 401" in capsys.readouterr().err


def test_the_job_scores_when_every_path_needs_the_token(spark, closed_service, tmp_path):
    lines = [json.dumps({"id": str(i), "text": "good day" if i % 2 else "bad day"}) for i in range(40)]
    scoring = ScoringOptions(service_url=closed_service, batch_size=16, token=TOKEN)
    config = tmp_job_config(
        tmp_path,
        scoring=scoring,
        outage_limit_seconds=15,  # without the token the health wait would hold the batch: fail instead
        model_version_source=lambda: fetch_model_version(closed_service, 15, TOKEN),
    )
    query, stats = run_job_on_spool(spark, [Record(line) for line in lines], config, len(lines), timeout=120)
    assert query.exception() is None and stats.outage is None
    out = pd.read_parquet(tmp_path / "tweets")
    assert sorted(out["id"], key=int) == [str(i) for i in range(40)]
    assert stats.model_version == "fake@0"
    assert set(out["sentiment"]) == {"Positive", "Negative"}
