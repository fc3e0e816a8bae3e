"""The training script writes a servable model directory (a tiny run, to check the plumbing)."""

import json

import pytest

from experiments.bert_config import TrainConfig, packaged_base_model
from experiments.data import SplitSpec, load_split
from experiments.fit_state import bucketed_batches
from experiments.train_bert import train
from model_api.model.predictor import SentimentPredictor
from tests.conftest import SAMPLE

pytestmark = [pytest.mark.model, pytest.mark.slow]


def test_split_is_stable_and_disjoint():
    spec = SplitSpec(val_fraction=0.1, test_fraction=0.1, seed=1)
    a = load_split([SAMPLE], spec)
    b = load_split([SAMPLE], spec)
    assert a.texts == b.texts
    parts = [set(a.texts[k]) for k in ("train", "val", "test")]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert 200 < a.sizes()["test"] < 400  # about 10% of 3,000


def test_bucketed_batches_cover_every_row_once():
    import random

    lengths = [random.Random(i).randint(3, 60) for i in range(1000)]
    batches = bucketed_batches(lengths, 32, random.Random(0))
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 10  # batches hold texts of similar length


def tiny_config(**settings) -> TrainConfig:
    """A training run small enough for a test: one epoch over 64 rows, evaluated every 4 steps."""
    return TrainConfig(
        **{
            "epochs": 1,
            "batch_size": 16,
            "eval_every": 4,
            "max_train_rows": 64,
            "max_eval_rows": 32,
            "three_class": "none",
            **settings,
        }
    )


def test_tiny_training_run_writes_a_servable_model(tmp_path):
    out = tmp_path / "model"
    config = tiny_config(base_model=packaged_base_model(), out=str(out), preprocessing="seed", max_length=32)
    # Seed 1: the sample itself is drawn from the test part of the default seed's split.
    metrics = train(config, [SAMPLE], SplitSpec(val_fraction=0.05, test_fraction=0.05, seed=1))
    meta = json.loads((out / "tweet_sentiment.json").read_text())
    assert meta["preprocessing"] == "seed" and meta["max_length"] == 32
    assert (out / "model.safetensors").stat().st_size < 50 * 1024 * 1024
    assert (out / "learning_curve.csv").read_text().count("\n") >= 2
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    predictor = SentimentPredictor.from_pretrained(out, precision="fp32")
    assert predictor.info.preprocessing == "seed"
    assert predictor.preprocess(["@a Hi THERE http://x"]) == ["hi there"]


def test_tiny_distillation_writes_a_smaller_servable_model(tmp_path):
    from experiments.distillation import keep_layers
    from model_api.model.predictor import FULL_MODEL_DIR

    out = tmp_path / "student"
    config = tiny_config(
        base_model=str(FULL_MODEL_DIR),
        out=str(out),
        max_test_rows=64,
        layers=2,
        teacher=str(FULL_MODEL_DIR),
        teacher_precision="int8",  # starts at once; the default compiles for about 40 s
    )
    train(config, [SAMPLE], SplitSpec(val_fraction=0.05, test_fraction=0.05, seed=1))
    meta = json.loads((out / "tweet_sentiment.json").read_text())
    assert meta["name"] == "MiniLM-L6-H384-uncased-sentiment140-2-layers-distilled"
    assert "--layers 2 --teacher" in (out / "README.md").read_text()

    student = SentimentPredictor.from_pretrained(out, precision="fp32")
    teacher = SentimentPredictor.from_pretrained(FULL_MODEL_DIR, precision="fp32")
    assert student.model.config.num_hidden_layers == 2
    assert len(student.model.bert.encoder.layer) == 2
    # Halving the layers halves the stored encoder: the file shrinks by two layers' weights.
    layer_bytes = sum(p.numel() for p in teacher.model.bert.encoder.layer[0].parameters()) * 2  # fp16
    shrink = (FULL_MODEL_DIR / "model.safetensors").stat().st_size - (out / "model.safetensors").stat().st_size
    assert shrink == pytest.approx(4 * layer_bytes, rel=0.01)
    # The student scores texts in range, and a teacher cut the same way keeps layers 2 and 5.
    probs = student.predict_proba(["i love this", "this is awful"])
    assert ((probs >= 0) & (probs <= 1)).all()
    assert keep_layers(teacher.model, 2) == [2, 5]


def test_tiny_three_class_run_serves_three_probabilities_through_its_fitted_map(tmp_path):
    from model_api.model.predictor import FAST_MODEL_DIR

    three = tmp_path / "three.csv"
    rows = ["label,text"] + [
        f"{label},{text} {i}"
        for i in range(40)
        for label, text in (("negative", "awful day"), ("neutral", "the bus leaves at"), ("positive", "lovely day"))
    ]
    three.write_text("\n".join(rows) + "\n")
    out = tmp_path / "model3"
    config = tiny_config(base_model=str(FAST_MODEL_DIR), out=str(out), three_class=str(three), max_test_rows=64)
    metrics = train(config, [SAMPLE], SplitSpec(val_fraction=0.1, test_fraction=0.1, seed=1))
    meta = json.loads((out / "tweet_sentiment.json").read_text())
    knots = meta["probability_map"]
    assert [k[1] for k in knots] == [0.0, 0.4, 0.5, 0.6, 1.0]
    assert json.loads((out / "config.json").read_text())["id2label"] == {
        "0": "negative",
        "1": "neutral",
        "2": "positive",
    }
    assert metrics["classes"] == 3 and 0.0 <= metrics["test_macro_f1_3class"] <= 1.0
    prediction = SentimentPredictor.from_pretrained(out, precision="fp32").predict(["lovely day 7"])[0]
    assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-5)


def _three_class_file(path, repeats: int = 40):
    rows = ["label,text"] + [
        f"{label},{text} {i}"
        for i in range(repeats)
        for label, text in (("negative", "awful day"), ("neutral", "the bus leaves at"), ("positive", "lovely day"))
    ]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_fit_stopped_by_a_crash_resumes_to_the_weights_of_an_unbroken_one(tmp_path):
    """Three-class rows alone, class-balanced, the best step chosen on a selection set; a run that
    dies after its first evaluation and is resumed ends with the weights of a run that never died."""
    import torch

    from experiments.bert_fit import fine_tune
    from experiments.data import load_three_class_split
    from experiments.train_bert import load_base_model, prepare_data, seed_everything
    from model_api.model.predictor import FAST_MODEL_DIR

    three = _three_class_file(tmp_path / "three.csv")
    select = _three_class_file(tmp_path / "select.csv", repeats=4)
    split = load_split([SAMPLE], SplitSpec(val_fraction=0.1, test_fraction=0.1, seed=1))
    three_split = load_three_class_split(three, SplitSpec(val_fraction=0.1, test_fraction=0.1, seed=1))

    def run(out, on_eval=None, resume=False):
        config = tiny_config(
            base_model=str(FAST_MODEL_DIR),
            out=str(out),
            three_class=str(three),
            binary_rows=0,
            class_weight="balanced",
            select_on=str(select),
            eval_every=2,
            bf16=False,
            resume=resume,
        )
        rng = seed_everything(config)
        data = prepare_data(split, config, rng, three_split)
        assert not any(data.train_binary) and len(data.select["select"][0]) == 12
        model, tokenizer = load_base_model(config, 3)
        fit = fine_tune(model, tokenizer, data, config, rng, on_eval=on_eval)
        return fit, model

    whole, unbroken = run(tmp_path / "whole")
    assert [p["step"] for p in whole.curve] == list(range(2, whole.steps + 1, 2))
    assert all("select_select_macro_f1" in p for p in whole.curve)
    assert not (tmp_path / "whole" / "checkpoint.pt").exists()  # removed once the fit ends

    class Crash(Exception):
        pass

    def crash_at_second_evaluation(curve):
        if len(curve) == 2:
            raise Crash

    with pytest.raises(Crash):
        run(tmp_path / "broken", on_eval=crash_at_second_evaluation)
    assert (tmp_path / "broken" / "checkpoint.pt").is_file()
    resumed, model = run(tmp_path / "broken", resume=True)
    assert resumed.steps == whole.steps and resumed.best_step == whole.best_step
    assert [p["step"] for p in resumed.curve] == [p["step"] for p in whole.curve]
    for (name, a), b in zip(unbroken.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5), name


def test_a_student_distilled_from_soft_labels_serves_through_a_map_fitted_without_labels(tmp_path):
    """The path the bundled models were made by: soft labels for every row (the Sentiment140 rows
    among them read without their labels), class weights, the map fitted by agreement."""
    import numpy as np

    from experiments.soft_labels import write_soft_labels
    from model_api.model.predictor import FAST_MODEL_DIR

    three = _three_class_file(tmp_path / "three.csv")
    spec = SplitSpec(val_fraction=0.1, test_fraction=0.1, seed=1)
    sentiment140 = load_split([SAMPLE], spec).texts["train"][:40]
    texts = [line.split(",", 1)[1] for line in three.read_text().splitlines()[1:]] + sentiment140
    probs = np.random.default_rng(0).dirichlet([1, 1, 1], len(texts))
    soft = write_soft_labels(tmp_path / "soft.parquet", texts, probs, {"teacher": "test"})
    out = tmp_path / "student"
    config = tiny_config(
        base_model=str(FAST_MODEL_DIR),
        out=str(out),
        three_class=str(three),
        binary_rows=20,
        soft_labels=str(soft),
        class_weight="balanced",
        calibration="agreement",
        max_test_rows=32,
    )
    metrics = train(config, [SAMPLE], spec)
    assert metrics["train_rows"] <= 120 + 20 and metrics["calibration"]["method"] == "agreement"
    knots = json.loads((out / "tweet_sentiment.json").read_text())["probability_map"]
    assert knots[2] == [0.5, 0.5] and [k[1] for k in knots] == [0.0, 0.4, 0.5, 0.6, 1.0]
    card = (out / "README.md").read_text()
    assert f"--soft-labels {soft}" in card and "--calibration agreement" in card and "--binary-rows 20" in card
    assert 0.0 <= SentimentPredictor.from_pretrained(out, precision="fp32").predict_proba(["lovely day 3"])[0] <= 1.0
