"""Replay tweets from a Sentiment140 file, optionally filtered by keyword, looped and limited."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from sentiment.schema import Tweet
from sentiment.sentiment140 import ReadStats, iter_rows


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
