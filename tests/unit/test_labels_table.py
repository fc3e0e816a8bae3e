"""The labels table: appended by more than one writer at once, read with pandas, and what to label next."""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import pytest

from sentiment.labelled import (
    RANDOM,
    SKIP,
    UNCERTAIN,
    LabelsTable,
    agreement,
    confusion,
    draw_tweets,
    wilson_interval,
)
from sentiment.schema import LABELS_COLUMNS

pytestmark = pytest.mark.unit


def label(i: int, value: str = "Positive", keyword: str = "python", **extra) -> dict:
    row = {
        "id": str(i),
        "keyword": keyword,
        "text": f"tweet {i}",
        "label": value,
        "model_version": "m@1",
        "p_positive": 0.7,
        "sentiment": "Positive",
        "drawn": RANDOM,
    }
    return {**row, **extra}


def test_labels_are_appended_and_read_back_with_pandas(tmp_path):
    table = LabelsTable(tmp_path / "labels")
    assert table.read().empty and list(table.read().columns) == list(LABELS_COLUMNS)
    table.append([label(1), label(2, "Negative")])
    table.append([label(3, SKIP, keyword="rust")])
    df = pd.read_parquet(tmp_path / "labels")  # any reader: one parquet folder
    assert sorted(df["id"]) == ["1", "2", "3"] and list(df.columns) == list(LABELS_COLUMNS)
    assert sorted(table.read("python")["id"]) == ["1", "2"]
    assert not any(p.name.startswith(".") for p in (tmp_path / "labels").iterdir())


def test_a_changed_mind_keeps_the_newest_label(tmp_path):
    table = LabelsTable(tmp_path / "labels")
    table.append([label(1, "Negative", labelled_at=pd.Timestamp("2026-12-01", tz="UTC"))])
    table.append([label(1, "Neutral", labelled_at=pd.Timestamp("2026-12-02", tz="UTC"))])
    table.append([label(1, "Positive", keyword="rust")])  # the same tweet under another keyword: its own label
    read = table.read()
    assert sorted(zip(read["keyword"], read["label"], strict=True)) == [("python", "Neutral"), ("rust", "Positive")]


def _write_many(folder: str, start: int) -> None:
    table = LabelsTable(folder)
    for i in range(start, start + 50):
        table.append([label(i)])


def test_two_writers_at_once_lose_nothing(tmp_path):
    folder = str(tmp_path / "labels")
    ctx = multiprocessing.get_context("spawn")
    writers = [ctx.Process(target=_write_many, args=(folder, start)) for start in (0, 1000)]
    for w in writers:
        w.start()
    for w in writers:
        w.join(60)
        assert w.exitcode == 0
    read = LabelsTable(folder).read()
    assert len(read) == 100 and read["id"].nunique() == 100


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (label(1, "Great"), "is not one of Negative, Neutral, Positive, Skip"),
        (label(1, id=""), "needs the tweet's id and text"),
        (label(1, drawn="because"), "drawn must be"),
    ],
)
def test_a_bad_label_is_refused_and_nothing_is_written(tmp_path, row, message):
    table = LabelsTable(tmp_path / "labels")
    with pytest.raises(ValueError, match=message):
        table.append([label(0), row])
    assert table.read().empty


def scored(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, n)
    return pd.DataFrame({"id": [str(i) for i in range(n)], "text": [f"t{i}" for i in range(n)], "p_positive": p})


def test_drawn_tweets_are_mostly_the_least_sure_some_at_random_never_one_labelled():
    tweets = scored()
    labelled = {str(i) for i in range(0, 200, 2)}
    drawn = draw_tweets(tweets, labelled, 40, random_share=0.25, seed=3)
    assert len(drawn) == 40 and drawn["id"].nunique() == 40
    assert not set(drawn["id"]) & labelled
    unsure = drawn[drawn["drawn"] == UNCERTAIN]
    assert 0 < (drawn["drawn"] == RANDOM).sum() < 20 and len(unsure) > 20
    edge = lambda p: np.minimum(abs(p - 0.4), abs(p - 0.6))  # noqa: E731
    pool = tweets[~tweets["id"].isin(labelled | set(drawn.loc[drawn["drawn"] == RANDOM, "id"]))]
    # The uncertain ones are exactly the pool's nearest to an edge of the band.
    assert sorted(edge(unsure["p_positive"])) == sorted(edge(pool["p_positive"]))[: len(unsure)]
    assert draw_tweets(tweets, set(tweets["id"]), 10).empty  # everything labelled: nothing left


def test_agreement_counts_random_draws_only_with_an_interval():
    rows = [label(i, "Positive", sentiment="Positive") for i in range(30)]
    rows += [label(100 + i, "Negative", sentiment="Positive") for i in range(10)]
    rows += [label(200 + i, "Negative", sentiment="Positive", drawn=UNCERTAIN) for i in range(50)]
    rows += [label(300 + i, SKIP) for i in range(5)]
    found = agreement(pd.DataFrame(rows))
    assert (found.labelled, found.agreed) == (40, 30) and found.share == 0.75
    assert (found.low, found.high) == pytest.approx(wilson_interval(30, 40)) and found.low < 0.75 < found.high
    matrix = confusion(pd.DataFrame(rows))
    assert matrix.loc["Negative", "Positive"] == 60 and matrix.loc["Positive", "Positive"] == 30
    assert matrix.to_numpy().sum() == 90  # skips left out
