"""The job's transforms of scored tweets: pure functions from DataFrame to DataFrame.

Keyword tracking, scoring through the model service from each partition, and the labelled,
stamped output columns. No session and no I/O here but the service call of :func:`score_tweets`;
the cleaning and the band's labels are :mod:`stream.cleaning`'s.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from sentiment.labels import NeutralBand
from sentiment.schema import OUTPUT_COLUMNS
from stream.cleaning import label_tweets
from stream.scoring import ScoringOptions, score_partitions


def track_filter(df: DataFrame, track: tuple[str, ...]) -> tuple[DataFrame, DataFrame]:
    """Split tweets into those containing a tracked keyword (case-insensitive) and the rest.

    A kept tweet with no keyword gets the first tracked keyword it contains.
    """
    if not track:
        return df, df.limit(0)
    lowered = F.lower(F.col("text"))
    first_match = F.coalesce(*[F.when(lowered.contains(k.lower()), F.lit(k)) for k in track])
    tagged = df.withColumn("_match", first_match)
    kept = (
        tagged.where(F.col("_match").isNotNull())
        .withColumn("keyword", F.coalesce(F.col("keyword"), F.col("_match")))
        .drop("_match")
    )
    return kept, tagged.where(F.col("_match").isNull()).drop("_match")


def score_tweets(df: DataFrame, options: ScoringOptions) -> DataFrame:
    """Add ``p_positive`` by calling the model service from each partition, ``score_error``:
    null, or why the service refused the text (then ``p_positive`` is null), and ``model_version``:
    the model that scored it, from the service's answer."""
    extra = [
        StructField("p_positive", DoubleType()),
        StructField("score_error", StringType()),
        StructField("model_version", StringType()),
    ]
    schema = StructType(df.schema.fields + extra)
    return df.mapInPandas(lambda batches: score_partitions(batches, options), schema)


def enrich(scored: DataFrame, band: NeutralBand, model_version: str) -> DataFrame:
    """Label, stamp and select the output columns. Each row keeps the ``model_version`` of the
    answer that scored it; ``model_version`` is for rows without one (a service that does not say)."""
    stamped = F.lit(model_version)
    if "model_version" in scored.columns:
        stamped = F.coalesce(F.col("model_version"), stamped)
    return (
        label_tweets(scored, band)
        .withColumn("model_version", stamped)
        .withColumn("processed_at", F.current_timestamp())
        .withColumn("date", F.to_date("processed_at"))
        .select(*OUTPUT_COLUMNS)
    )
