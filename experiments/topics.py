"""Hold out whole topics of a tweet collection, so that a held-out figure says how a model does on
topics it never trained on.

SemEval's tweets were gathered by topic (a named entity, an event, a hashtag), and a random split
puts tweets of the same topics on both sides: it rewards learning the topics. Here a tweet's
topics are its hashtags and its named entities (words written with a capital inside a sentence that
the collection writes capitalised most of the time: "Obama", "Chelsea", not "Good" or "Friday").
A seeded draw of topics with at least ``min_tweets`` tweets is held out until ``fraction`` of the
tweets are, and every tweet that names one of them goes to the held-out part: no training tweet
names a held-out topic.

Usage: python -m experiments.topics FILE [--fraction 0.12] [--seed 13]   # the held-out topics
"""

from __future__ import annotations

import argparse
import random
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

# Calendar words are written with a capital but are not topics.
_CALENDAR_WORDS = (
    "monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu thur thurs fri sat sun "
    "january february march april may june july august september october november december "
    "jan feb mar apr jun jul aug sep sept oct nov dec today tomorrow tonight yesterday"
)
CALENDAR = frozenset(_CALENDAR_WORDS.split())  # noqa: SIM905
_WORD = re.compile(r"[#@]?[A-Za-z][A-Za-z0-9']*")
_POSSESSIVE = re.compile(r"'s?$")


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def capital_shares(texts: Sequence[str]) -> dict[str, float]:
    """For each word seen inside a sentence (not its first word), the share of those times it is
    written with a capital."""
    capital, seen = Counter(), Counter()
    for text in texts:
        for word in _words(text)[1:]:
            if word[0] in "#@":
                continue
            low = _POSSESSIVE.sub("", word.lower())
            seen[low] += 1
            capital[low] += word[0].isupper()
    return {w: capital[w] / n for w, n in seen.items()}


@dataclass(frozen=True)
class TopicModel:
    """Which words of a collection name a topic: hashtags, and the words in ``entities``."""

    entities: frozenset[str]

    @classmethod
    def fit(cls, texts: Sequence[str], min_capital_share: float = 0.7, min_count: int = 5) -> TopicModel:
        shares = capital_shares(texts)
        counts = Counter(_POSSESSIVE.sub("", w.lower()) for t in texts for w in set(_words(t)[1:]))
        entities = {
            w
            for w, share in shares.items()
            if share >= min_capital_share
            and counts[w] >= min_count
            and len(w) >= 3
            and "'" not in w  # I'd, I'm: contractions of a capital word
            and w not in CALENDAR
            and w not in ENGLISH_STOP_WORDS
        }
        return cls(frozenset(entities))

    def topics(self, text: str) -> set[str]:
        """The topics a tweet names: its hashtags (``#name``) and its entity words."""
        out = set()
        for word in _words(text):
            low = _POSSESSIVE.sub("", word.lower())
            if (low.startswith("#") and len(low) > 2) or low in self.entities:
                out.add(low)
        return out


def held_out_topics(
    texts: Sequence[str], fraction: float = 0.12, seed: int = 13, min_tweets: int = 20
) -> tuple[frozenset[str], TopicModel]:
    """Topics drawn at random (seeded) among those of at least ``min_tweets`` tweets, until the
    tweets naming any of them are ``fraction`` of ``texts``.

    Raises:
        ValueError: when ``fraction`` is not within (0, 0.5].
    """
    if not 0 < fraction <= 0.5:
        raise ValueError(f"the held-out fraction must be within (0, 0.5], got {fraction}")
    model = TopicModel.fit(texts)
    per_text = [model.topics(t) for t in texts]
    counts = Counter(topic for topics in per_text for topic in topics)
    candidates = sorted(t for t, n in counts.items() if n >= min_tweets)
    random.Random(seed).shuffle(candidates)
    chosen: set[str] = set()
    held = [False] * len(texts)
    target = fraction * len(texts)
    total = 0
    for topic in candidates:
        if total >= target:
            break
        chosen.add(topic)
        for i, topics in enumerate(per_text):
            if not held[i] and topic in topics:
                held[i] = True
                total += 1
    return frozenset(chosen), model


@dataclass(frozen=True)
class TopicSplit:
    """The held-out topics of a collection and how to tell a tweet that names one."""

    topics: frozenset[str]
    model: TopicModel

    @classmethod
    def of(cls, texts: Sequence[str], fraction: float = 0.12, seed: int = 13) -> TopicSplit:
        return cls(*held_out_topics(texts, fraction, seed))

    def is_held_out(self, text: str) -> bool:
        return not self.topics.isdisjoint(self.model.topics(text))


def main(argv: list[str] | None = None) -> int:
    import csv

    from sentiment.logs import setup_logging

    p = argparse.ArgumentParser(prog="python -m experiments.topics", description=__doc__.splitlines()[0])
    p.add_argument("file", help="a label,text CSV")
    p.add_argument("--fraction", type=float, default=0.12)
    p.add_argument("--seed", type=int, default=13)
    args = p.parse_args(argv)
    setup_logging()
    with open(args.file, encoding="utf-8", newline="") as f:
        rows = [(row["label"].strip().lower(), row["text"]) for row in csv.DictReader(f)]
    texts = [text for _, text in rows]
    split = TopicSplit.of(texts, args.fraction, args.seed)
    held = [label for (label, text) in rows if split.is_held_out(text)]
    shares = Counter(held)
    n = len(held)
    print(f"{len(split.topics)} topics held out, {n} of {len(texts)} tweets ({n / len(texts):.1%})")
    print("classes: " + " / ".join(f"{label} {count / max(n, 1):.0%}" for label, count in sorted(shares.items())))
    print(", ".join(sorted(split.topics)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
