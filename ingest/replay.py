"""Replay tweets from a Sentiment140 file (optionally filtered by keyword, looped and limited) or
lines from a JSON-lines file, as tweets or as spool records."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from ingest.spool import Record
from sentiment.schema import Tweet
from sentiment.sentiment140 import ReadStats, iter_rows

# Real Sentiment140 rows the bundled model never trained on: what a replay relays by default.
BUNDLED_SAMPLE = Path(__file__).resolve().parent / "data" / "sample_tweets.csv"


def keyword_matcher(keywords: list[str]) -> re.Pattern[str] | None:
    """A case-insensitive pattern matching any of the keywords, or None when there are none."""
    words = [k for k in (w.strip() for w in keywords) if k]
    if not words:
        return None
    return re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)


def replay_tweets(
    path: str | Path,
    track: list[str] | None = None,
    loop: bool = False,
    limit: int | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Tweet]:
    """Yield the tweets of a Sentiment140 file as relay records.

    Args:
        path: a Sentiment140 file (six columns, or ``polarity,text``).
        track: keep only tweets containing one of these keywords (case-insensitive); the first
            keyword found is the record's ``keyword``.
        loop: start again at the end of the file. Looped copies get ids suffixed ``~N`` so that
            every relayed id stays unique.
        limit: stop after this many tweets.
        stats: filled with the rows read and the malformed rows skipped.

    Raises:
        FileNotFoundError, ValueError: as :func:`sentiment.sentiment140.iter_rows`.
    """
    path = Path(path)
    matcher = keyword_matcher(track or [])
    stats = stats if stats is not None else ReadStats()

    def one_pass(round_: int) -> Iterator[Tweet]:
        pass_stats = stats if round_ == 0 else ReadStats()
        found = 0
        for row in iter_rows(path, pass_stats):
            keyword = None
            if matcher is not None:
                m = matcher.search(row.text)
                if m is None:
                    continue
                keyword = next(k for k in track if k.lower() == m.group(0).lower())
            if row.tweet is not None:
                tweet = Tweet(row.tweet.id, row.tweet.created_at, row.tweet.user, row.text, keyword)
            else:
                now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                tweet = Tweet(f"{path.stem}:{row.line}", now, "", row.text, keyword)
            if round_:
                tweet = Tweet(f"{tweet.id}~{round_}", tweet.created_at, tweet.user, tweet.text, tweet.keyword)
            found += 1
            yield tweet
        if found == 0 and loop:
            raise ValueError(f"{path}: no tweet matches {track}; nothing to loop over")

    rounds = itertools.count() if loop else range(1)
    tweets = itertools.chain.from_iterable(one_pass(r) for r in rounds)
    return itertools.islice(tweets, limit) if limit is not None else tweets


def source_key(path: str | Path, *parts: object) -> str:
    """A short, stable name for one replay (file and options), so that a rerun can resume it."""
    import hashlib

    path = Path(path).resolve()
    digest = hashlib.sha1(repr((str(path), *parts)).encode()).hexdigest()[:10]
    return f"{path.name}#{digest}"


def replay_records(
    path: str | Path,
    track: list[str] | None = None,
    loop: bool = False,
    limit: int | None = None,
    stats: ReadStats | None = None,
) -> Iterator[Record]:
    """The spool records of a Sentiment140 replay: each tweet as a JSON line, and each malformed
    row as a record carrying its file, line and reason (the job quarantines it).

    ``seq`` numbers the records from 0 in an order that is the same on every run, so that a rerun
    can skip what an earlier run already put in the spool.
    """
    stats = stats if stats is not None else ReadStats()
    stats.keep_rejects = True
    name = Path(path).name
    seq = itertools.count()

    def rejects() -> Iterator[Record]:
        while stats.rejects:
            line, reason = stats.rejects.pop(0)
            yield Record(line="", error=f"{name}:{line}: {reason}", seq=next(seq))

    for tweet in replay_tweets(path, track=track, loop=loop, limit=limit, stats=stats):
        yield from rejects()
        yield Record(line=tweet.to_json_line().decode("utf-8").rstrip("\n"), seq=next(seq))
    yield from rejects()


def jsonl_records(path: str | Path, max_line_bytes: int = 65_536) -> Iterator[Record]:
    """The spool records of a JSON-lines file, each line as it is (the job validates it).

    Lines the relay cannot pass on as text are kept as records with an ``error``: bytes that are not
    UTF-8 (decoded with U+FFFD in their place), lines over ``max_line_bytes`` (cut to 1,000
    characters), blank lines.

    Raises:
        FileNotFoundError: if the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such JSON-lines file: {path}")
    with path.open("rb") as f:
        for number, (raw, length) in enumerate(bounded_lines(f, max_line_bytes), start=1):
            where = f"{path.name}:{number}"
            if length > max_line_bytes:
                text = raw[:1000].decode("utf-8", errors="replace")
                error = f"{where}: line of {length:,} bytes is over the limit of {max_line_bytes:,}"
                yield Record(text, error, seq=number - 1)
            else:
                yield line_record(raw, where, max_line_bytes, seq=number - 1)


def bounded_lines(f: BinaryIO, max_line_bytes: int, chunk: int = 1 << 16) -> Iterator[tuple[bytes, int]]:
    """The lines of a binary file without their ends, each with its length in bytes, in bounded
    memory: of a line longer than ``max_line_bytes`` (even one with no newline at all) only the
    first ``max_line_bytes`` bytes are kept; the rest is read in chunks and counted."""
    while True:
        raw = f.readline(max_line_bytes + 1)
        if not raw:
            return
        if raw.endswith(b"\n") or len(raw) <= max_line_bytes:  # a whole line (the last may have no end)
            line = raw.rstrip(b"\r\n")
            yield line, len(line)
            continue
        length, ended = len(raw), False
        while not ended:  # the rest of an over-long line: counted, not kept
            more = f.readline(chunk)
            if not more:
                break
            length += len(more)
            ended = more.endswith(b"\n")
        yield raw, length - ended


def line_record(raw: bytes, where: str, max_line_bytes: int, seq: int | None = None) -> Record:
    """One received line as a spool record, with an ``error`` when it cannot be used as text."""
    if len(raw) > max_line_bytes:
        text = raw[:1000].decode("utf-8", errors="replace")
        return Record(text, f"{where}: line of {len(raw):,} bytes is over the limit of {max_line_bytes:,}", seq=seq)
    if not raw.strip():
        return Record("", f"{where}: blank line", seq=seq)
    try:
        return Record(raw.decode("utf-8"), seq=seq)
    except UnicodeDecodeError as e:
        return Record(
            raw.decode("utf-8", errors="replace"),
            f"{where}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at position {e.start})",
            seq=seq,
        )
