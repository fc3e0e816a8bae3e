"""From what the relay sent to typed tweet rows: unwrap, validate, de-duplicate (native Spark SQL).

Every transform here is a function from DataFrame to DataFrame with no session and no I/O.

* :func:`unwrap` turns the source's ``value`` column into ``line`` (the record as received),
  ``relay_error`` (why the relay could not take it as is), ``offset`` and ``relayed_at``: from the
  spool's envelopes, or from the plain lines of the socket source.
* :func:`parse_lines` checks each line strictly (a JSON object; ``id`` a non-empty string or an
  integer; ``text`` a string; ``created_at`` an ISO 8601 timestamp when present; ``user`` and
  ``keyword`` strings when present) and gives every unusable line a ``reason``.
* :func:`drop_duplicate_tweets` keeps the first copy of each tweet id seen within
  ``stream.dedup_minutes`` of relay time (state kept in the checkpoint), since a live relay can
  resend and a producer can repeat itself. Unusable lines are never merged: each keeps its own key.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from sentiment.schema import TWEET_FIELDS
from sentiment.spool_format import ENVELOPE_DDL

PARSED_COLUMNS = ("raw", "reason", "offset", *TWEET_FIELDS, "relayed_at")


def unwrap(source: DataFrame, transport: str) -> DataFrame:
    """Columns ``line``, ``relay_error``, ``offset``, ``relayed_at`` (timestamp) of either transport."""
    if transport == "socket":
        relayed = F.try_variant_get(F.try_parse_json("value"), "$.relayed_at", "double")
        return source.select(
            F.col("value").alias("line"),
            F.lit(None).cast("string").alias("relay_error"),
            F.lit(None).cast("bigint").alias("offset"),
            F.coalesce(F.timestamp_seconds(relayed), F.current_timestamp()).alias("relayed_at"),
        )
    e = F.from_json("value", ENVELOPE_DDL).alias("e")
    return source.select(e, "value").select(
        F.coalesce(F.col("e.line"), F.col("value")).alias("line"),
        F.when(F.col("e.offset").isNull(), F.lit("not a spool record"))
        .otherwise(F.col("e.error"))
        .alias("relay_error"),
        F.col("e.offset").alias("offset"),
        F.coalesce(F.timestamp_seconds(F.col("e.at")), F.current_timestamp()).alias("relayed_at"),
    )


def _type_of(v: Column, name: str) -> Column:
    """SQL type name of a field of a parsed JSON object (``STRING``, ``BIGINT``, ``VOID`` for null), or null."""
    return F.schema_of_variant(F.try_variant_get(v, f"$.{name}", "variant"))


def _absent(t: Column) -> Column:
    return t.isNull() | (t == F.lit("VOID"))


def _is_integer(t: Column) -> Column:
    return (t == F.lit("BIGINT")) | t.rlike(r"^DECIMAL\(\d+,0\)$")


def parse_lines(lines: DataFrame) -> DataFrame:
    """Validate and type each ``line``; ``reason`` is null for a usable tweet.

    Columns out: ``raw``, ``reason``, ``offset``, the tweet fields (``created_at`` a timestamp) and
    ``relayed_at``. Lines that are not a spool envelope (the socket source's) need only ``value``.
    """
    if "line" not in lines.columns:
        lines = unwrap(lines, "socket")
    v = F.try_parse_json("line")
    types = {name: _type_of(v, name) for name in TWEET_FIELDS}
    created_text = F.try_variant_get(v, "$.created_at", "string")
    created = F.try_to_timestamp(created_text)
    id_text = F.trim(F.try_variant_get(v, "$.id", "string"))

    def wrong_type(name: str, wanted: str) -> Column:
        return F.concat(F.lit(f'field "{name}" must be {wanted}, got '), F.lower(types[name]))

    reason = (
        F.when(F.col("relay_error").isNotNull(), F.col("relay_error"))
        .when(v.isNull() | ~F.schema_of_variant(v).startswith("OBJECT<"), F.lit("not a valid JSON object"))
        .when(_absent(types["id"]), F.lit('missing field "id"'))
        .when(~((types["id"] == "STRING") | _is_integer(types["id"])), wrong_type("id", "a string or an integer"))
        .when(id_text == "", F.lit('empty field "id"'))
        .when(_absent(types["text"]), F.lit('missing field "text"'))
        .when(types["text"] != "STRING", wrong_type("text", "a string"))
        .when(~_absent(types["created_at"]) & (types["created_at"] != "STRING"), wrong_type("created_at", "a string"))
        .when(
            ~_absent(types["created_at"]) & created.isNull(),
            F.concat(F.lit('"created_at" is not an ISO 8601 timestamp: '), F.substring(created_text, 1, 100)),
        )
        .when(~_absent(types["user"]) & (types["user"] != "STRING"), wrong_type("user", "a string"))
        .when(~_absent(types["keyword"]) & (types["keyword"] != "STRING"), wrong_type("keyword", "a string"))
    )
    return lines.select(
        F.col("line").alias("raw"),
        reason.alias("reason"),
        F.col("offset"),
        id_text.alias("id"),
        F.coalesce(created, F.col("relayed_at")).alias("created_at"),
        F.try_variant_get(v, "$.user", "string").alias("user"),
        F.try_variant_get(v, "$.text", "string").alias("text"),
        F.try_variant_get(v, "$.keyword", "string").alias("keyword"),
        F.col("relayed_at"),
    )


def drop_duplicate_tweets(parsed: DataFrame, minutes: float) -> DataFrame:
    """Keep the first copy of each tweet id within ``minutes`` of relay time (a streaming operator).

    Unusable lines are keyed by their spool offset (a random key on the socket), so none is merged.
    """
    key = F.when(F.col("reason").isNull(), F.concat(F.lit("id:"), F.col("id"))).otherwise(
        F.concat(F.lit("line:"), F.coalesce(F.col("offset").cast("string"), F.rand().cast("string")))
    )
    return (
        parsed.withColumn("_key", key)
        .withWatermark("relayed_at", f"{int(minutes * 60)} seconds")
        .dropDuplicatesWithinWatermark(["_key"])
        .drop("_key")
    )
