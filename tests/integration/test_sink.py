"""The idempotent parquet sink on a real SparkSession: a batch written twice leaves one copy."""

from __future__ import annotations

import pandas as pd
import pytest

from stream.sink import ParquetSink, sink_id_for

pytestmark = pytest.mark.integration


def test_a_batch_written_again_replaces_its_own_file(spark, tmp_path):
    sink = ParquetSink(tmp_path / "out", sink_id_for(tmp_path / "ck"))
    first = spark.createDataFrame([("1", "2026-11-28"), ("2", "2026-11-28")], "id string, date string")
    sink.write(first, 0, partition_by="date")
    sink.write(spark.createDataFrame([("3", "2026-11-28")], "id string, date string"), 1, partition_by="date")
    # Batch 0 again, as after a crash between the write and the commit, even on another day.
    sink.write(first.replace("2026-11-28", "2026-11-29", subset=["date"]), 0, partition_by="date")
    out = pd.read_parquet(tmp_path / "out")
    assert sorted(out["id"]) == ["1", "2", "3"]
    assert sink.batch_ids() == {0, 1}
    assert not list((tmp_path / "out" / "_staging").glob("*"))


def test_the_sink_id_is_kept_in_the_checkpoint(tmp_path):
    a = sink_id_for(tmp_path / "ck")
    assert sink_id_for(tmp_path / "ck") == a != sink_id_for(tmp_path / "other")
