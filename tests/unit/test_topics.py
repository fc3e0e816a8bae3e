"""The SemEval split by topic: no tweet outside the held-out part names a held-out topic."""

import csv

import pytest

from experiments.data import SplitSpec, load_three_class_split
from experiments.topics import CALENDAR, TopicModel, TopicSplit

pytestmark = pytest.mark.unit

TOPICS = ["Obama", "Chelsea", "Apple", "Madrid", "Kanye", "Nintendo", "Ohio", "Paris"]
FILLER = ["I think", "so happy that", "watching", "can't believe", "Good news about", "Tomorrow with"]


def tweets(n: int = 800) -> list[str]:
    """Tweets naming one topic each (written as a name is), and words every tweet shares."""
    out = []
    for i in range(n):
        topic = TOPICS[i % len(TOPICS)]
        out.append(f"{FILLER[i % len(FILLER)]} {topic} on Friday, good day #{topic.lower()}{i % 3}")
    return out


def test_names_and_hashtags_are_topics_but_calendar_and_common_words_are_not():
    model = TopicModel.fit(tweets())
    topics = model.topics("so happy that Obama's speech on Friday was good #win")
    assert "obama" in topics and "#win" in topics
    assert not topics & {"friday", "good", "happy", "so"}
    assert "friday" in CALENDAR


def test_no_tweet_outside_the_held_out_part_names_a_held_out_topic():
    texts = tweets()
    split = TopicSplit.of(texts, fraction=0.2, seed=3)
    held = [t for t in texts if split.is_held_out(t)]
    kept = [t for t in texts if not split.is_held_out(t)]
    assert split.topics
    assert 0.2 <= len(held) / len(texts) < 0.5
    for text in kept:
        assert not (split.model.topics(text) & split.topics), text


def test_the_split_is_seeded():
    texts = tweets()
    assert TopicSplit.of(texts, 0.2, seed=3).topics == TopicSplit.of(texts, 0.2, seed=3).topics
    assert {TopicSplit.of(texts, 0.2, seed=s).topics for s in range(6)} != {TopicSplit.of(texts, 0.2, seed=3).topics}


def test_a_bad_fraction_is_refused():
    with pytest.raises(ValueError, match="fraction"):
        TopicSplit.of(tweets(), fraction=0.9)


def test_the_three_class_split_sets_the_held_out_topics_apart(tmp_path):
    path = tmp_path / "three.csv"
    texts = tweets()
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows((["negative", "neutral", "positive"][i % 3], t) for i, t in enumerate(texts))
    split = load_three_class_split(path, SplitSpec(seed=3))
    assert sum(split.sizes().values()) == len(texts)
    held = TopicSplit.of(texts, seed=3)
    assert split.texts["topic"] == [t for t in texts if held.is_held_out(t)]
    for part in ("train", "val", "test"):
        assert not any(held.is_held_out(t) for t in split.texts[part])
    none = load_three_class_split(path, SplitSpec(seed=3), topic_fraction=0)
    assert none.texts["topic"] == []
