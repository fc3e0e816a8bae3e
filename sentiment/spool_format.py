"""The spool's layout on disk and its line envelope: the contract between the relay and the job.

Usage: ``line = envelope_line(offset, at, record_line)`` (the relay); ``read_complete(folder)`` (the job)

``ingest/`` writes the spool (:class:`ingest.spool.Spool`); ``stream/`` reads it by segment, lowest
first offset first (:mod:`stream.spool_source`, whose offsets are positions in the spool), and moves
what it committed to :func:`archive_dir`. Both take the names from here.

Layout: sealed segments ``seg-<first offset>.jsonl`` (:func:`segment_name`), the one being written
``.open.jsonl`` (not a segment's name, so never read), the relay's state ``_state.json`` (``spool_id``,
``next_offset``, ``last``, ``last_at``) and, once a finite replay is wholly written,
``_complete.json``.

Envelope fields, one JSON object a line: ``offset`` (int), ``at`` (epoch seconds when accepted),
``line`` (the record as received, a JSON object for tweets), ``error`` (why the relay could not
take the line as is: undecodable bytes, too long, a malformed CSV row; the job quarantines it with
that reason), ``src`` and ``seq`` (which source and how far into it, so a replay resumes where it
stopped).
"""

from __future__ import annotations

import json
from pathlib import Path

OPEN_SEGMENT = ".open.jsonl"
STATE_FILE = "_state.json"
COMPLETE_FILE = "_complete.json"
SEGMENT_GLOB = "seg-*.jsonl"
# The envelope's fields the job reads (``src`` and ``seq`` are the relay's own).
ENVELOPE_DDL = "offset BIGINT, at DOUBLE, line STRING, error STRING"


def archive_dir(spool: Path) -> Path:
    """Where the job moves the segments it has committed (a sibling of the spool, never listed as unread)."""
    return spool.with_name(spool.name + "-done")


def segment_name(first_offset: int) -> str:
    """The name of the sealed segment whose first line has ``first_offset``."""
    return f"seg-{first_offset:012d}.jsonl"


def envelope_line(
    offset: int, at: float, line: str, error: str | None = None, src: str | None = None, seq: int | None = None
) -> str:
    """One spool line: the envelope of a record as JSON, newline-terminated."""
    envelope: dict = {"offset": offset, "at": at, "line": line}
    if error:
        envelope["error"] = error
    if src is not None:
        envelope["src"], envelope["seq"] = src, seq
    return json.dumps(envelope, ensure_ascii=False) + "\n"


def read_complete(folder: str | Path) -> dict | None:
    """The completion marker of a finite replay, or None while the log is still being written."""
    try:
        return json.loads((Path(folder) / COMPLETE_FILE).read_text())
    except (OSError, ValueError):
        return None


def spool_id(folder: str | Path) -> str | None:
    """The identity of the spool in ``folder`` (made with its state), or None before a relay opened it."""
    try:
        return json.loads((Path(folder) / STATE_FILE).read_text()).get("spool_id")
    except (OSError, ValueError, AttributeError):
        return None
