"""A merge killed at each of its steps (SIGKILL of a real process) loses and duplicates nothing: the
folder reads every row once, the checkpoint's catalog finds no batch missing, and the next merge
and a batch run again finish the work."""

from __future__ import annotations

import datetime
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from sentiment.config import PROJECT_ROOT
from sentiment.parquet_folder import read_folder
from stream.compaction import merge_partition
from stream.sink import sink_for

pytestmark = pytest.mark.faults

DDL = "id string, created_at timestamp, date string"
PARTITION = "date=2026-12-08"

# Each step: the function the merger calls, and after how many of its calls the process is killed.
STEPS = {
    "writing the merged file": ("stream.versions.pq.write_table", 1, "during"),
    "after the new version is made": ("stream.versions._write_merged", 1, "after"),
    "after the catalog lists old and new": ("stream.versions.Catalog.snapshot", 1, "after"),
    "after the swap": ("stream.versions.link_partition", 1, "after"),
    "after the catalog drops the old": ("stream.versions.Catalog.snapshot", 2, "after"),
}

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from unittest import mock
    import importlib
    target, calls, when, folder, ck = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
    from stream.compaction import merge_partition
    from stream.sink import sink_for
    module_name, _, attr = target.rpartition(".")
    try:
        owner = importlib.import_module(module_name)
    except ModuleNotFoundError:  # an attribute of an attribute: stream.versions.Catalog.snapshot
        mod, _, cls = module_name.rpartition(".")
        owner = getattr(importlib.import_module(mod), cls)
    original = getattr(owner, attr)
    count = [0]
    def killing(*args, **kwargs):
        count[0] += 1
        if count[0] == calls and when == "during":
            path = args[1]
            with open(path, "wb") as f:
                f.write(b"PAR1 half a file")
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        if count[0] == calls:
            os.kill(os.getpid(), signal.SIGKILL)
        return result
    with mock.patch.object(owner, attr, killing):
        merge_partition(sink_for(folder, ck), sys.argv[6], before_batch=100, target_bytes=1 << 30)
    print("merge finished without being killed")
    """
)


def expected(batches) -> list[str]:
    return sorted(f"{b}-{i}" for b in batches for i in range(3))


@pytest.mark.parametrize("step", list(STEPS))
def test_a_merge_killed_at_each_step_loses_and_duplicates_nothing(spark, tmp_path, step):
    folder, ck = tmp_path / "out", tmp_path / "ck"
    sink = sink_for(folder, ck)
    t0 = datetime.datetime(2026, 12, 8, 10)
    for b in range(6):
        sink.write(spark.createDataFrame([(f"{b}-{i}", t0, "2026-12-08") for i in range(3)], DDL), b, "date")

    target, calls, when = STEPS[step]
    child = subprocess.run(
        [sys.executable, "-c", CHILD, target, str(calls), when, str(folder), str(ck), PARTITION],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -9, child.stdout + child.stderr  # killed, not finished

    assert sorted(pd.read_parquet(folder, columns=["id"])["id"]) == expected(range(6))
    assert sorted(read_folder(folder, columns=["id"])["id"]) == expected(range(6))
    restarted = sink_for(folder, ck)  # the job started again: the catalog from disk
    assert restarted.missing_batches(5) == []

    merge_partition(restarted, PARTITION, before_batch=6, target_bytes=1 << 30)
    again = spark.createDataFrame([("3-again", t0, "2026-12-08")], DDL)
    restarted.write(again, 3, "date")
    want = sorted([i for i in expected(range(6)) if not i.startswith("3-")] + ["3-again"])
    assert sorted(pd.read_parquet(folder, columns=["id"])["id"]) == want
    assert restarted.missing_batches(5) == [] and restarted.batch_ids() == set(range(6))
