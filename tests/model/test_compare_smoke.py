"""The comparison's smoke profile: every model family trains, predicts and lands in the table."""

import json

import pytest

from experiments.compare import ALL_MODELS, run
from tests.conftest import SAMPLE, shared_data_dir

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_smoke_profile_trains_every_family(tmp_path, sentiment140_files):
    three_class = {}
    data = shared_data_dir()
    if data is not None and (data / "tweeteval" / "val.csv").is_file():
        three_class["tweeteval"] = data / "tweeteval" / "val.csv"
    # Seed 7, not the default: the bundled sample is the default split's test rows.
    out = run(list(ALL_MODELS), "smoke", sentiment140_files or [SAMPLE], three_class, tmp_path, seed=7)
    results = json.loads((out / "results.json").read_text())
    assert [r["model"] for r in results["results"]] == list(ALL_MODELS)
    for row in results["results"]:
        assert 0.55 <= row["accuracy"] <= 1.0, row["model"]  # better than chance on 1,000 held-out tweets
        assert row["tweets_per_second"] > 0 and row["size_mb"] > 0
    table = (out / "results.md").read_text()
    assert all(f"| {m} |" in table for m in ALL_MODELS)
    assert (out / "accuracy_throughput.png").stat().st_size > 0
    sizes = results["run"]["split"]["sizes"]
    assert sizes["train"] == 3000 or not shared_data_dir()  # the sample alone has fewer rows
    assert sizes["val"] > 0 and sizes["test"] > 0


def test_smoke_profile_adds_a_three_class_table_read_as_served(tmp_path, sentiment140_files):
    from model_api.model.predictor import FAST_MODEL_DIR

    data = shared_data_dir()
    if data is None or not (data / "semeval2017" / "train.csv").is_file():
        pytest.skip("needs the shared three-class data (semeval2017/train.csv)")
    three_class = {"tweeteval": data / "tweeteval" / "val.csv"}
    models = ["logreg", "gru", "bert"]
    out = run(
        models,
        "smoke",
        sentiment140_files or [SAMPLE],
        three_class,
        tmp_path,
        seed=7,
        bert_model=FAST_MODEL_DIR,
        three_class_train=data / "semeval2017" / "train.csv",
    )
    results = json.loads((out / "results.json").read_text())
    rows = {r["model"]: r for r in results["three_class"]}
    assert list(rows) == ["logreg", "gru", "bert-fast"]
    for name, row in rows.items():
        for s in ("tweeteval", "semeval_test"):
            assert 0.34 < row[f"{s}_macro_f1"] <= 1.0, (name, s)  # better than one class for all
            assert 0 <= row[f"{s}_f1_neutral"] <= 1 and 0 <= row[f"{s}_macro_recall"] <= 1
            assert (out / f"confusion3_{name}_{s}.png").stat().st_size > 0
        assert 0 < row["raw_low"] <= row["raw_high"] < 1
    table = (out / "results.md").read_text()
    assert "## Three classes" in table and "| bert-fast |" in table
