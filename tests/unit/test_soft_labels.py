"""Soft labels kept as parquet keyed by a hash of the text, read back by text."""

import numpy as np
import pandas as pd
import pytest

from experiments.soft_labels import SoftLabels, text_key, write_soft_labels

pytestmark = pytest.mark.unit


def test_soft_labels_round_trip_by_text(tmp_path):
    texts = ["good day", "bad day", "a day", "good day"]  # a repeated text is kept once
    probs = np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1], [0.2, 0.6, 0.2], [0.1, 0.2, 0.7]])
    path = write_soft_labels(tmp_path / "soft.parquet", texts, probs, {"teacher": "t"})
    labels = SoftLabels(path)
    assert len(labels) == 3 and labels.about == {"teacher": "t"}
    assert np.allclose(labels.lookup(["a day", "good day"]), probs[[2, 0]], atol=1e-6)
    assert "bad day" in labels and "no day" not in labels
    frame = pd.read_parquet(path)
    assert list(frame.columns) == ["key", "p_negative", "p_neutral", "p_positive"]
    assert frame["key"].tolist() == [text_key(t) for t in texts[:3]]


def test_a_text_without_a_soft_label_is_named(tmp_path):
    path = write_soft_labels(tmp_path / "soft.parquet", ["one"], np.array([[0.2, 0.3, 0.5]]), {})
    with pytest.raises(KeyError, match=r"1 of 2 texts have no soft label .*'two'"):
        SoftLabels(path).lookup(["one", "two"])


def test_probabilities_must_be_three_per_text(tmp_path):
    with pytest.raises(ValueError, match="expected \\(2, 3\\)"):
        write_soft_labels(tmp_path / "soft.parquet", ["a", "b"], np.ones((2, 2)), {})


def test_a_parquet_file_of_something_else_is_refused(tmp_path):
    pd.DataFrame({"text": ["a"]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(ValueError, match="not a soft-label file"):
        SoftLabels(tmp_path / "other.parquet")


def test_the_transfer_set_holds_no_held_out_tweet(tmp_path):
    """Training and validation tweets of the three-class file and Sentiment140 training texts only:
    never a tweet of a held-out topic or a test split."""
    import csv

    from experiments.data import SplitSpec, load_split, load_three_class_split
    from experiments.soft_labels import transfer_texts
    from tests.conftest import SAMPLE

    three = tmp_path / "three.csv"
    topics = ["Obama", "Chelsea", "Apple", "Madrid", "Kanye", "Nintendo"]
    with three.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["label", "text"])
        writer.writerows(
            (["negative", "neutral", "positive"][i % 3], f"so {topics[i % 6]} today {i}") for i in range(600)
        )
    # Seed 1: the bundled sample is all in the test part of the default seed's split.
    texts = transfer_texts(three, [SAMPLE], 500, seed=1)
    split = load_three_class_split(three, SplitSpec(seed=1))
    s140 = load_split([SAMPLE], SplitSpec(seed=1))
    assert split.texts["topic"] and split.texts["test"]
    held_out = set(split.texts["topic"]) | set(split.texts["test"]) | set(s140.texts["test"]) | set(s140.texts["val"])
    assert not held_out & set(texts)
    assert (
        set(split.texts["train"]) <= set(texts)
        and len(texts) == len(split.texts["train"]) + len(split.texts["val"]) + 500
    )
