"""The end-of-run summary of run_pipeline.sh: rows in all and per label, read from the parquet."""

import pandas as pd
import pytest

from stream.summary import summary

pytestmark = pytest.mark.unit


def test_rows_are_counted_per_label_every_label_shown(tmp_path):
    out = tmp_path / "tweets"
    out.mkdir()
    pd.DataFrame({"sentiment": ["Positive", "Negative", "Positive"]}).to_parquet(out / "part-0.parquet")
    lines = summary(out).splitlines()
    assert lines[1].startswith(f"pipeline: 3 row(s) in {out} ")
    assert lines[2:5] == ["  Negative        1", "  Neutral         0", "  Positive        2"]
    assert f'pd.read_parquet("{out}")' in lines[-1]


def test_a_missing_folder_is_reported(tmp_path):
    assert summary(tmp_path / "tweets") == f"pipeline: no parquet was written to {tmp_path / 'tweets'}"
