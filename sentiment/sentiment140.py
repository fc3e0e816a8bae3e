"""Reader for Sentiment140 files, shared by the replay relay and the experiments.

Two formats are accepted, detected from the first line:

* the original six quoted columns ``polarity,id,date,query,user,text`` with no header
  (``training.1600000.processed.noemoticon.csv``, ``testdata.manual.2009.06.14.csv``);
* a header ``polarity,text`` followed by text-only rows.

Files are read as UTF-8, or as latin-1 when they are not valid UTF-8 (as many copies of the full
file are). Polarity is 0 (negative), 2 (neutral) or 4 (positive). Malformed rows are reported,
never fatal.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from sentiment.schema import Tweet

log = logging.getLogger(__name__)

POLARITIES = {"0": 0, "2": 2, "4": 4}
_DATE_FORMAT = "%a %b %d %H:%M:%S %Y"
_TZ_OFFSETS = {"PDT": -7, "PST": -8, "UTC": 0, "GMT": 0}


@dataclass(frozen=True)
class Row:
    """One labelled row. ``tweet`` holds id, date and user when the file has them."""

    polarity: int
    text: str
    tweet: Tweet | None
    line: int


@dataclass
class ReadStats:
    """What a read saw: rows kept and malformed rows, with the first few reasons."""

    rows: int = 0
    malformed: int = 0
    encoding: str = "utf-8"
    examples: list[str] = field(default_factory=list)
    # With ``keep_rejects``, every rejected row waits here as (line, reason) until a reader takes it.
    keep_rejects: bool = False
    rejects: list[tuple[int, str]] = field(default_factory=list)

    def reject(self, path: Path, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.examples) < 5:
            self.examples.append(f"{path}:{line}: {reason}")
        if self.keep_rejects:
            self.rejects.append((line, reason))


def detect_encoding(path: Path, chunk_size: int = 1 << 20) -> str:
    """Return ``"utf-8"`` when the whole file decodes as UTF-8, else ``"latin-1"``."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as f:
        try:
            while chunk := f.read(chunk_size):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            return "latin-1"
    return "utf-8"


def parse_date(value: str) -> str:
    """Convert ``Mon Apr 06 22:19:45 PDT 2009`` to ISO 8601 UTC ``2009-04-07T05:19:45Z``.

    Raises:
        ValueError: if the date is not in that format.
    """
    parts = value.split()
    if len(parts) != 6:
        raise ValueError(f"unrecognised date {value!r}")
    zone = parts.pop(4)
    if zone not in _TZ_OFFSETS:
        raise ValueError(f"unrecognised time zone {zone!r} in date {value!r}")
    local = datetime.strptime(" ".join(parts), _DATE_FORMAT)
    aware = local.replace(tzinfo=timezone(timedelta(hours=_TZ_OFFSETS[zone])))
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iter_rows(path: str | Path, stats: ReadStats | None = None) -> Iterator[Row]:
    """Yield the labelled rows of a Sentiment140 file, skipping (and counting) malformed ones.

    Args:
        path: a file in either accepted format.
        stats: filled in as the file is read, when given.

    Raises:
        FileNotFoundError: if the file does not exist.
        ValueError: if the file is empty or in neither format.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such Sentiment140 file: {path}")
    stats = stats if stats is not None else ReadStats()
    stats.encoding = detect_encoding(path)
    with path.open(encoding=stats.encoding, newline="") as f:
        rows = _numbered_rows(path, csv.reader(f), stats)
        line, first = next(rows, (0, None))
        if first is None:
            raise ValueError(f"{path} is empty")
        if [c.strip().lower() for c in first] == ["polarity", "text"]:
            yield from _text_only(path, rows, stats)
        elif len(first) == 6:
            yield from _six_columns(path, itertools.chain([(line, first)], rows), stats)
        else:
            raise ValueError(
                f"{path}:1: expected six columns (polarity,id,date,query,user,text) or a "
                f"'polarity,text' header, got {len(first)} column(s)"
            )
    if stats.malformed:
        log.warning("%s: skipped %d malformed row(s), e.g. %s", path, stats.malformed, stats.examples[0])


def _numbered_rows(path: Path, reader, stats: ReadStats) -> Iterator[tuple[int, list[str]]]:
    """Pair each row with the physical line it ends on (a quoted text may span lines).

    A row the csv module refuses (a field over its limit of 131,072 characters, a NUL byte) is
    rejected and the reading goes on with the next row.
    """
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            stats.reject(path, reader.line_num, f"unreadable CSV row: {e}")
            continue
        yield reader.line_num, cells


def _polarity(value: str) -> int | None:
    return POLARITIES.get(value.strip())


def _text_only(path: Path, rows: Iterator[tuple[int, list[str]]], stats: ReadStats) -> Iterator[Row]:
    for line, cells in rows:
        if len(cells) != 2:
            stats.reject(path, line, f"expected 2 columns, got {len(cells)}")
            continue
        polarity = _polarity(cells[0])
        if polarity is None:
            stats.reject(path, line, f"polarity {cells[0]!r} is not 0, 2 or 4")
            continue
        stats.rows += 1
        yield Row(polarity, cells[1], None, line)


def _six_columns(path: Path, rows: Iterator[tuple[int, list[str]]], stats: ReadStats) -> Iterator[Row]:
    for line, cells in rows:
        if len(cells) != 6:
            stats.reject(path, line, f"expected 6 columns, got {len(cells)}")
            continue
        polarity_cell, tweet_id, date, _query, user, text = cells
        polarity = _polarity(polarity_cell)
        if polarity is None:
            stats.reject(path, line, f"polarity {polarity_cell!r} is not 0, 2 or 4")
            continue
        try:
            created_at = parse_date(date)
        except ValueError as e:
            stats.reject(path, line, str(e))
            continue
        stats.rows += 1
        yield Row(polarity, text, Tweet(id=tweet_id, created_at=created_at, user=user, text=text), line)


def read_labelled(path: str | Path) -> tuple[list[str], list[int]]:
    """Read texts and polarities (0, 2, 4) of every well-formed row of a file."""
    texts: list[str] = []
    polarities: list[int] = []
    for row in iter_rows(path):
        texts.append(row.text)
        polarities.append(row.polarity)
    return texts, polarities
