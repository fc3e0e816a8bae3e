"""Cleaning and labelling as native Spark SQL expressions, built from the shared definitions.

The regex steps come from :mod:`sentiment.cleaning` and the band from :mod:`sentiment.labels`, so
the job and the Python code cannot disagree (a test runs both on the whole data set).
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sentiment.cleaning import SEED, Recipe
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE, NeutralBand


def recipe_column(col: Column, recipe: Recipe = SEED) -> Column:
    """Apply a cleaning recipe to a string column with ``regexp_replace`` and ``lower``."""
    for pattern, replacement in recipe.steps:
        col = F.regexp_replace(col, F.lit(pattern), F.lit(replacement))
    return F.lower(col) if recipe.lower else col


def clean_tweets(df: DataFrame, text_col: str = "text", out_col: str = "clean_text") -> DataFrame:
    """Add ``clean_text``: the seed recipe applied to ``text``."""
    return df.withColumn(out_col, recipe_column(F.col(text_col)))


def label_column(p: Column, band: NeutralBand) -> Column:
    """Negative below ``band.low``, Positive above ``band.high``, Neutral in between (inclusive)."""
    return (
        F.when(p.isNull(), F.lit(None).cast("string"))
        .when(p < F.lit(band.low), F.lit(NEGATIVE))
        .when(p > F.lit(band.high), F.lit(POSITIVE))
        .otherwise(F.lit(NEUTRAL))
    )


def label_tweets(df: DataFrame, band: NeutralBand, p_col: str = "p_positive") -> DataFrame:
    """Add ``sentiment`` from the positive-probability."""
    return df.withColumn("sentiment", label_column(F.col(p_col), band))
