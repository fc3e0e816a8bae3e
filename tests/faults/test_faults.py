"""Fault tests: the real processes (service, relay, job), one broken on purpose, every tweet counted.

Each scenario is one of :mod:`harness.scenarios` (``python -m benchmarks.faults`` prints the
same figures): every input id exactly once in what ``pandas.read_parquet`` returns, and a reader
polling the output all along never fails.
"""

from __future__ import annotations

import pytest

from harness.scenarios import run_scenario

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TWEETS = 1500
RATE = 100.0


def check(outcome) -> None:
    assert outcome.lost == 0, f"lost {outcome.lost}: {outcome.lost_ids}"
    assert outcome.duplicated == 0, f"duplicated {outcome.duplicated}: {outcome.duplicated_ids}"
    assert outcome.rows_out == outcome.tweets_in
    assert outcome.reader_errors == 0, outcome.notes
    assert outcome.reader_reads > 0


def test_service_stopped_for_30_s_mid_stream(tmp_path):
    outcome = run_scenario("service-outage", tmp_path, TWEETS, RATE, outage=30)
    check(outcome)
    assert "held a batch: True" in outcome.notes


def test_job_sigkilled_mid_stream_and_rerun(tmp_path):
    check(run_scenario("kill-job", tmp_path, TWEETS, RATE, outage=0))


def test_relay_sigkilled_mid_stream_and_rerun(tmp_path):
    outcome = run_scenario("kill-relay", tmp_path, TWEETS, RATE, outage=0)
    check(outcome)
    assert "relay resumed: True" in outcome.notes


def test_malformed_flood_quarantines_every_bad_line_with_its_reason(tmp_path):
    outcome = run_scenario("malformed-flood", tmp_path, 600, RATE, outage=0)
    check(outcome)
    assert outcome.quarantined == outcome.bad_lines == 300
    assert f"{outcome.bad_lines} of {outcome.bad_lines} bad lines quarantined with the expected reason" in outcome.notes


def test_long_non_ascii_posts_are_scored_once_and_the_job_ends_well(tmp_path):
    """40 valid posts of 20,000 CJK characters (120 KB each as request JSON) among 300 tweets."""
    outcome = run_scenario("long-posts", tmp_path, 300, RATE, outage=0)
    check(outcome)
    assert outcome.tweets_in == 340 and outcome.quarantined == 0
    assert "job exit 0" in outcome.notes, outcome.notes
