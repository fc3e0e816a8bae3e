"""``python -m experiments.adapt``: refuses bad input before training, writes a model only when it is
better on the held-out labels and no standard figure drops beyond the tolerance (a tiny run)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from experiments import adapt as adapt_module
from experiments.adapt import AdaptConfig, BadInput, Refused, adapt, main, verdict
from model_api.model.locations import FAST_MODEL_DIR
from sentiment.labelled import RANDOM, SKIP, LabelsTable

pytestmark = [pytest.mark.model, pytest.mark.slow]

TEXTS = {
    "Positive": ("the new {k} build is sick {i}", "{k} launch went off {i}"),
    "Negative": ("{k} crashed on me again {i}", "gave up on {k} {i}"),
    "Neutral": ("{k} docs moved to a new page {i}", "{k} meetup is on thursday {i}"),
}


def write_labels(folder, count: int = 90, keyword: str = "rust", classes=("Negative", "Neutral", "Positive")):
    rows = []
    for i in range(count):
        label = classes[i % len(classes)]
        text = TEXTS[label][i % 2].format(k=keyword, i=i)
        rows.append(
            {"id": f"{keyword}-{i}", "keyword": keyword, "text": text, "label": label, "drawn": RANDOM,
             "sentiment": "Neutral", "p_positive": 0.5, "model_version": "m@1"}
        )  # fmt: skip
    LabelsTable(folder).append(rows)


def config(tmp_path, **fields) -> AdaptConfig:
    empty = tmp_path / "no-shared-data"
    empty.mkdir(exist_ok=True)
    settings = {
        "labels": tmp_path / "labels",
        "keyword": "rust",
        "base": str(FAST_MODEL_DIR),
        "out": tmp_path / "adapted",
        "min_labels": 30,
        "repeat": 2,
        "batch_size": 16,
        "data_dir": empty,  # no shared data: the labels alone, judged on their held-out part
        **fields,
    }
    return AdaptConfig(**settings)


@pytest.mark.parametrize(
    ("setup", "fields", "message"),
    [
        (lambda f: None, {}, "no labels in"),
        (lambda f: write_labels(f, keyword="python"), {}, "no labels for keyword 'rust'"),
        (lambda f: write_labels(f, count=12), {}, "12 labels for 'rust', fewer than --min-labels 30"),
        (lambda f: write_labels(f, classes=("Positive",)), {}, "every label for 'rust' is Positive"),
        (lambda f: write_labels(f), {"base": "/nonexistent/model"}, "cannot read the base model"),
        (lambda f: write_labels(f), {"holdout": 1.5}, "--holdout must be between 0 and 1"),
    ],
)
def test_bad_input_is_refused_before_any_training(tmp_path, setup, fields, message):
    setup(tmp_path / "labels")
    with pytest.raises(BadInput, match=message):
        adapt(config(tmp_path, **fields))
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "adapted.adapting").exists()


def test_skips_are_not_labels(tmp_path):
    write_labels(tmp_path / "labels", count=20)
    LabelsTable(tmp_path / "labels").append(
        [{"id": f"s{i}", "keyword": "rust", "text": f"x {i}", "label": SKIP} for i in range(40)]
    )
    with pytest.raises(BadInput, match="20 labels for 'rust'"):
        adapt(config(tmp_path))


def test_an_existing_output_or_a_second_adapt_is_refused(tmp_path):
    write_labels(tmp_path / "labels")
    (tmp_path / "adapted").mkdir()
    with pytest.raises(BadInput, match="exists: choose another --out"):
        adapt(config(tmp_path))
    (tmp_path / "adapted").rmdir()
    (tmp_path / "adapted.adapting").mkdir()  # what a running adapt holds
    with pytest.raises(BadInput, match="another adapt is writing"):
        adapt(config(tmp_path))
    assert main(["--labels", str(tmp_path / "labels"), "--keyword", "rust", "--base", str(FAST_MODEL_DIR),
                 "--out", str(tmp_path / "adapted")]) == 2  # fmt: skip


def test_a_tiny_adapt_writes_a_servable_model_with_its_figures(tmp_path):
    write_labels(tmp_path / "labels")
    report = adapt(config(tmp_path, force=True), ["--keyword", "rust"])
    out = tmp_path / "adapted"
    assert (out / "model.safetensors").is_file() and not (tmp_path / "adapted.adapting").exists()
    saved = json.loads((out / "adapt.json").read_text())
    assert saved["labels"] == {"train": 63, "holdout": 27}  # 30% of each class held out
    assert set(saved["figures"]) >= {"base", "adapted", "sets"}
    assert "labels_holdout_macro_f1" in saved["figures"]["adapted"]
    meta = json.loads((out / "tweet_sentiment.json").read_text())
    assert meta["name"].endswith("-adapted-rust") and [k[1] for k in meta["probability_map"]] == [0, 0.4, 0.5, 0.6, 1]
    assert "python -m experiments.adapt --keyword rust" in (out / "README.md").read_text()
    from model_api.model.predictor import SentimentPredictor

    prediction = SentimentPredictor.from_pretrained(out, precision="fp32").predict(["the new rust build is sick 999"])[
        0
    ]
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)
    assert report["seconds"] > 0


def test_a_model_worse_on_a_standard_set_is_not_written(tmp_path, monkeypatch):
    write_labels(tmp_path / "labels")
    figures = {
        "sets": ["labels_holdout", "gop"],
        "base": {"labels_holdout_macro_f1": 0.50, "gop_macro_f1": 0.56, "sentiment140_accuracy": 0.75},
        "adapted": {"labels_holdout_macro_f1": 0.70, "gop_macro_f1": 0.52, "sentiment140_accuracy": 0.75},
    }
    assert verdict(figures, 0.02) == ["gop macro-F1 0.520 is more than 0.02 below the base's 0.560"]
    monkeypatch.setattr(adapt_module, "judge", lambda *a: figures)
    with pytest.raises(Refused, match="gop macro-F1 0.520"):
        adapt(config(tmp_path))
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "adapted.adapting").exists()
    figures["adapted"]["gop_macro_f1"] = 0.55  # within the tolerance
    adapt(config(tmp_path))
    assert (tmp_path / "adapted" / "adapt.json").is_file()
    assert pd.read_json(tmp_path / "adapted" / "adapt.json", typ="series")["failed"] == []
