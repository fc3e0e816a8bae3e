"""The job's outputs at start: their columns written before any batch, and files lost since the last run found.

Usage: ``problem = prepare_outputs(spark, job)``: None, or what is missing and what to do.

Each output folder gets an empty ``part-schema.parquet`` with its columns (:mod:`stream.sink`), so
``pandas.read_parquet("output/tweets")`` on a folder with no batch yet is an empty table, not an
error. A checkpoint that has committed batches whose files were deleted from the output since
(``rm -rf output/tweets`` to see a run again) would make the job resume after them and write
nothing: that is reported instead, with ``--start-over`` as the way to compute them again.
"""

from __future__ import annotations

from collections.abc import Iterator

from pyspark.sql import SparkSession

from sentiment.schema import ALERTS_DDL, OUTPUT_DDL, QUARANTINE_DDL, TRENDS_DDL
from stream.query import JobConfig
from stream.sink import last_committed_batch, sink_for


def _outputs(job: JobConfig) -> Iterator[tuple[str, str, str]]:
    """(folder, checkpoint of the query writing it, columns) of every output of the job."""
    yield job.output, job.checkpoint, OUTPUT_DDL  # with the partition column, so an empty folder shows it
    yield job.quarantine, job.checkpoint, QUARANTINE_DDL
    if job.trends is not None:
        yield job.trends.output, job.trends.checkpoint, TRENDS_DDL
        yield job.trends.alerts, job.trends.checkpoint, ALERTS_DDL


def _ranges(ids: list[int]) -> str:
    """``[0, 1, 2, 5]`` as ``0-2, 5``."""
    spans: list[list[int]] = []
    for i in ids:
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def missing_outputs(job: JobConfig) -> str | None:
    """What the checkpoints say was written but is no longer in the output folders, as one message."""
    problems = []
    for folder, checkpoint, _ in _outputs(job):
        last = last_committed_batch(checkpoint)
        if last is None:
            continue
        sink = sink_for(folder, checkpoint)
        missing = sink.missing_batches(last)
        if missing:
            problems.append(
                f"  {folder}: the files of {len(missing)} committed batch(es) are missing "
                f"(batch{'es' if len(missing) > 1 else ''} {_ranges(missing)}, e.g. {sink.file_name(missing[0])})"
            )
    if not problems:
        return None
    return (
        "the checkpoints say these batches are written, but their files are gone from the output:\n"
        + "\n".join(problems)
        + "\nResuming would not write them again. To compute everything again from the input, start over:\n"
        "  ./run_pipeline.sh --start-over   (or python -m stream --start-over, after the relay's --start-over)"
    )


def prepare_outputs(spark: SparkSession, job: JobConfig) -> str | None:
    """Check the outputs against the checkpoints, then write each folder's columns; the problem, if any."""
    problem = missing_outputs(job)
    if problem is None:
        for folder, checkpoint, ddl in _outputs(job):
            sink_for(folder, checkpoint).write_schema(spark, ddl)
    return problem
