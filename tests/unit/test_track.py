"""`--track` takes several keywords after one flag, and stays repeatable (relay and job alike)."""

from __future__ import annotations

import pytest

from ingest.cli import build_parser as ingest_parser
from sentiment.config import Config
from stream.job import build_parser as stream_parser
from stream.job import job_config_from_args

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "argv",
    [["--track", "love", "hate"], ["--track", "love", "--track", "hate"], ["love", "--track", "hate"]],
)
def test_the_job_tracks_every_keyword_given(argv):
    job = job_config_from_args(stream_parser().parse_args(argv), Config())
    assert set(job.track) == {"love", "hate"}


@pytest.mark.parametrize("command", ["replay", "twitter"])
def test_the_relay_tracks_every_keyword_given(command):
    assert ingest_parser().parse_args([command, "--track", "love", "hate"]).track == ["love", "hate"]
    assert ingest_parser().parse_args([command, "--track", "love", "--track", "hate", "sad"]).track == [
        "love",
        "hate",
        "sad",
    ]
