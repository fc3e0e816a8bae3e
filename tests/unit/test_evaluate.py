"""The generalisation table: rows read as served, blends, the cache, and the command on files."""

import json

import numpy as np
import pytest

from experiments.evaluate import ProbaCache, Scorer, evaluate_row, main, markdown_table, served_classes
from experiments.scorers import blend_scorer
from experiments.three_class import EvalSet
from sentiment.labels import ProbabilityMap

pytestmark = pytest.mark.unit

SURE = {0: [0.9, 0.05, 0.05], 1: [0.1, 0.8, 0.1], 2: [0.05, 0.05, 0.9]}


def oracle(truth: dict[str, int], wrong: set[str] = frozenset()) -> Scorer:
    """A scorer sure of each text's class (its truth), except for the ``wrong`` texts, which it calls negative."""
    calls = []

    def class_proba(texts):
        calls.append(len(texts))
        return np.array([SURE[0] if t in wrong else SURE[truth[t]] for t in texts])

    scorer = Scorer("oracle", class_proba, "oracle-1")
    scorer.calls = calls
    return scorer


def sets() -> tuple[list[EvalSet], dict[str, int]]:
    texts = [f"tweet {i}" for i in range(30)]
    labels = [i % 3 for i in range(30)]
    truth = dict(zip(texts, labels, strict=True))
    return [EvalSet("tweeteval_val", texts[:15], labels[:15]), EvalSet("gop", texts[15:], labels[15:])], truth


def test_a_perfect_scorer_scores_one_and_a_wrong_one_less(tmp_path):
    evals, truth = sets()
    row = evaluate_row(oracle(truth), evals, None, ProbaCache(tmp_path))
    assert row["gop_macro_f1"] == 1.0 and row["served_is_most_likely"] == 1.0
    wrong = {t for t, y in truth.items() if y == 2 and t in evals[1].texts}
    worse = evaluate_row(oracle(truth, wrong), evals, None, ProbaCache(None))
    assert worse["gop_f1_positive"] == 0.0 and worse["gop_macro_f1"] < 0.6
    assert worse["tweeteval_val_macro_f1"] == 1.0
    assert worse["selection_mean_macro_f1"] == worse["gop_macro_f1"]


def test_probabilities_are_cached_per_model_and_set(tmp_path):
    evals, truth = sets()
    scorer = oracle(truth)
    evaluate_row(scorer, evals, None, ProbaCache(tmp_path))
    evaluate_row(scorer, evals, None, ProbaCache(tmp_path))
    assert scorer.calls == [15, 15]  # once per set, not twice


def test_a_blend_weighs_its_parts(tmp_path):
    evals, truth = sets()
    good, bad = oracle(truth), oracle(truth, set(truth))
    bad.name, bad.key = "bad", "bad-1"
    blend = blend_scorer("oracle@3+bad@1", {"oracle": good, "bad": bad})
    assert blend.name == "oracle@0.75+bad@0.25"
    probs = ProbaCache(tmp_path).get(blend, "gop", evals[1].texts)
    expected = 0.75 * good.class_proba(evals[1].texts) + 0.25 * bad.class_proba(evals[1].texts)
    assert np.allclose(probs, expected)
    with pytest.raises(ValueError, match="must be positive"):
        blend_scorer("oracle@0", {"oracle": good})


def test_served_labels_follow_the_map_and_the_band():
    probs = np.array([SURE[0], SURE[1], SURE[2], [0.35, 0.2, 0.45]])  # the last: p_positive 0.55
    assert served_classes(probs, ProbabilityMap()).tolist() == [0, 1, 2, 1]
    stretched = ProbabilityMap(((0.0, 0.0), (0.45, 0.4), (0.5, 0.5), (0.52, 0.6), (1.0, 1.0)))
    assert served_classes(probs, stretched).tolist() == [0, 1, 2, 2]


def test_the_table_names_every_set(tmp_path):
    evals, truth = sets()
    row = evaluate_row(oracle(truth), evals, None, ProbaCache(None))
    table = markdown_table([row], ["tweeteval_val", "gop"])
    assert table.splitlines()[0].startswith("| model | tweeteval_val | gop | ood mean")
    assert "| oracle | 1.000 (1.000) | 1.000 (1.000) | 1.000 |" in table


def test_the_command_scores_the_baseline_on_given_files(tmp_path, capsys):
    """The TF-IDF baseline trained on a small three-class file, evaluated on another, end to end."""
    import csv

    from experiments import linear

    rows = [("positive", f"I love this great day {i}") for i in range(20)]
    rows += [("negative", f"I hate this awful day {i}") for i in range(20)]
    rows += [("neutral", f"The meeting is on day {i}") for i in range(20)]
    baseline = linear.save(
        linear.fit("logreg", [t for _, t in rows], [["negative", "neutral", "positive"].index(y) for y, _ in rows]),
        tmp_path / "lr.joblib",
    )
    test = tmp_path / "mine.csv"
    with test.open("w", newline="") as f:
        csv.writer(f).writerows(
            [
                ("label", "text"),
                ("positive", "love it, great"),
                ("negative", "awful, I hate it"),
                ("neutral", "The meeting is on Monday"),
            ]
        )
    empty = tmp_path / "no-data"
    empty.mkdir()
    code = main(
        [
            "--data-dir",
            str(empty),
            "--test-file",
            str(test),
            "--baseline",
            str(baseline),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "| logreg |" in out and "mine" in out
    rows = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert rows[0]["mine_macro_f1"] == 1.0
