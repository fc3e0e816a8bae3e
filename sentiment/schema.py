"""The records that cross stages: the relayed tweet (``ingest/`` to ``stream/``) and the job's output tables.

The job writes ``output/tweets``, ``output/quarantine``, ``output/trends`` and ``output/alerts``
with these columns and Spark SQL types; the dashboard, the report and the tests read them by the
same names. Each table is written once here, as (column, type) pairs, and its column tuple and DDL
string are made from them.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

# Field names of one relayed line, in order. The Spark job's schema is built from these.
TWEET_FIELDS: tuple[str, ...] = ("id", "created_at", "user", "text", "keyword")


@dataclass(frozen=True)
class Tweet:
    """One tweet as relayed. ``created_at`` is ISO 8601 in UTC (``2009-04-06T22:19:45Z``)."""

    id: str
    created_at: str
    user: str
    text: str
    keyword: str | None = None

    def to_json_line(self) -> bytes:
        """One UTF-8 JSON object terminated by a newline (the relay's wire format)."""
        return (json.dumps(asdict(self), ensure_ascii=False) + "\n").encode("utf-8")


def _names(fields: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    return tuple(name for name, _ in fields)


def _ddl(fields: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name} {sql_type}" for name, sql_type in fields)


# One row of output/tweets; ``date`` (of ``processed_at``) partitions the folder.
OUTPUT_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "STRING"),
    ("created_at", "TIMESTAMP"),
    ("user", "STRING"),
    ("keyword", "STRING"),
    ("text", "STRING"),
    ("clean_text", "STRING"),
    ("p_positive", "DOUBLE"),
    ("sentiment", "STRING"),
    ("model_version", "STRING"),
    ("relayed_at", "TIMESTAMP"),
    ("processed_at", "TIMESTAMP"),
    ("date", "DATE"),
)
OUTPUT_COLUMNS = _names(OUTPUT_FIELDS)
OUTPUT_DDL = _ddl(OUTPUT_FIELDS)
TWEETS_DDL = _ddl(OUTPUT_FIELDS[:-1])  # the columns inside each file: the partition lives in folder names

# One row of output/quarantine: a line the job could not use, and why.
QUARANTINE_FIELDS: tuple[tuple[str, str], ...] = (
    ("raw", "STRING"),
    ("reason", "STRING"),
    ("offset", "BIGINT"),
    ("batch_id", "INT"),
    ("received_at", "TIMESTAMP"),
)
QUARANTINE_COLUMNS = _names(QUARANTINE_FIELDS)
QUARANTINE_DDL = _ddl(QUARANTINE_FIELDS)

# One row of output/trends: a keyword's tweets whose created_at falls in [window_start, window_end).
TRENDS_FIELDS: tuple[tuple[str, str], ...] = (
    ("keyword", "STRING"),
    ("window_start", "TIMESTAMP"),
    ("window_end", "TIMESTAMP"),
    ("n", "BIGINT"),
    ("n_negative", "BIGINT"),
    ("n_neutral", "BIGINT"),
    ("n_positive", "BIGINT"),
    ("mean_p_positive", "DOUBLE"),
    ("negative_share", "DOUBLE"),
)
TRENDS_COLUMNS = _names(TRENDS_FIELDS)
TRENDS_DDL = _ddl(TRENDS_FIELDS)

# One row of output/alerts: a window whose negative share stood z_score baseline deviations above the
# keyword's baseline (the mean and deviation of its last baseline_windows windows).
ALERTS_FIELDS: tuple[tuple[str, str], ...] = (
    ("keyword", "STRING"),
    ("window_start", "TIMESTAMP"),
    ("window_end", "TIMESTAMP"),
    ("n", "BIGINT"),
    ("n_negative", "BIGINT"),
    ("negative_share", "DOUBLE"),
    ("baseline_mean", "DOUBLE"),
    ("baseline_std", "DOUBLE"),
    ("baseline_windows", "BIGINT"),
    ("z_score", "DOUBLE"),
)
ALERTS_COLUMNS = _names(ALERTS_FIELDS)
ALERTS_DDL = _ddl(ALERTS_FIELDS)

# One row of output/labels: a person's label of one scored tweet (sentiment.labelled), with what
# the dashboard showed them: the model version, its score and label, and why the tweet was drawn
# ("uncertain": near the band's edges; "random": drawn at random, so agreement can be estimated).
LABELS_FIELDS: tuple[tuple[str, str], ...] = (
    ("id", "STRING"),
    ("keyword", "STRING"),
    ("text", "STRING"),
    ("label", "STRING"),
    ("model_version", "STRING"),
    ("p_positive", "DOUBLE"),
    ("sentiment", "STRING"),
    ("drawn", "STRING"),
    ("labelled_at", "TIMESTAMP"),
)
LABELS_COLUMNS = _names(LABELS_FIELDS)
