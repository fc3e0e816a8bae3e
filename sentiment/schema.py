"""The tweet record that crosses the socket, as JSON lines, from ``ingest/`` to ``stream/``."""

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
