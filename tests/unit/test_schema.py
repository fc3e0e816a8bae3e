"""The output tables' schemas: one list of (column, type) a table, which readers take their names from."""

from __future__ import annotations

import pytest

from dashboard.data import TWEET_COLUMNS
from sentiment.schema import OUTPUT_COLUMNS, OUTPUT_DDL, TRENDS_COLUMNS, TRENDS_DDL, TWEETS_DDL

pytestmark = pytest.mark.unit


def test_ddl_names_the_columns_in_order() -> None:
    assert [part.split()[0] for part in TRENDS_DDL.split(", ")] == list(TRENDS_COLUMNS)
    assert [part.split()[0] for part in OUTPUT_DDL.split(", ")] == list(OUTPUT_COLUMNS)


def test_tweets_in_files_leave_out_only_the_partition_column() -> None:
    assert OUTPUT_DDL == TWEETS_DDL + ", date DATE"


def test_dashboard_shows_only_columns_the_job_writes() -> None:
    assert set(TWEET_COLUMNS) <= set(OUTPUT_COLUMNS)
