"""A checkpoint's classes are read by their names: two classes by ``positive_index``, three by
negative/neutral/positive, anything else a clear error when the model loads."""

import shutil

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForSequenceClassification

from model_api.model.predictor import FAST_MODEL_DIR, SentimentPredictor
from sentiment.labels import ClassLayout, Prediction, class_layout

pytestmark = pytest.mark.unit


def test_two_classes_follow_the_positive_index():
    assert class_layout({0: "LABEL_0", 1: "LABEL_1"}) == ClassLayout(negative=0, positive=1)
    assert class_layout({0: "POS", 1: "NEG"}, positive_index=0) == ClassLayout(negative=1, positive=0)


def test_three_classes_are_found_by_name_in_any_order_and_case():
    layout = class_layout({0: "Positive", 1: "NEG", 2: "neutral"})
    assert layout == ClassLayout(negative=1, positive=0, neutral=2)
    probs = np.array([[0.6, 0.1, 0.3]])
    assert layout.positive_probability(probs).tolist() == pytest.approx([0.75])
    assert layout.three_probabilities(probs).tolist() == [[0.1, 0.3, 0.6]]


@pytest.mark.parametrize(
    "labels",
    [{0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"}, {0: "negative", 1: "positive", 2: "mixed"}],
)
def test_three_classes_that_cannot_be_named_are_an_error(labels):
    with pytest.raises(ValueError, match="name them negative, neutral and positive"):
        class_layout(labels)


def test_other_class_counts_are_an_error():
    with pytest.raises(ValueError, match="has 5 classes"):
        class_layout({i: f"star {i}" for i in range(5)})


def tiny_checkpoint(folder, id2label: dict[int, str]):
    """A small random BERT classifier with the bundled tokenizer and the given classes."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(id2label),
        id2label=id2label,
        label2id={v: k for k, v in id2label.items()},
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FAST_MODEL_DIR / name, folder / name)
    return folder


def test_a_users_three_class_checkpoint_is_served_by_its_labels(tmp_path):
    folder = tiny_checkpoint(tmp_path, {0: "positive", 1: "negative", 2: "neutral"})
    predictor = SentimentPredictor.from_pretrained(folder, precision="fp32")
    texts = ["what a lovely day", "the bus leaves at noon", "this is awful"]
    raw = predictor.class_proba(texts)  # negative, neutral, positive
    served = predictor.predict(texts)
    for prediction, (neg, neu, pos) in zip(served, raw, strict=True):
        assert prediction.p_positive == pytest.approx(pos + neu / 2, abs=1e-6)
        assert prediction.probabilities == pytest.approx((neg, neu, pos), abs=1e-6)
        assert prediction.to_dict()["probabilities"] == pytest.approx(
            {"negative": neg, "neutral": neu, "positive": pos}, abs=1e-6
        )
    assert predictor.describe()["classes"] == ["negative", "neutral", "positive"]


def test_a_checkpoint_whose_classes_cannot_be_read_fails_to_load(tmp_path):
    folder = tiny_checkpoint(tmp_path, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    with pytest.raises(ValueError, match="cannot read the model's three classes"):
        SentimentPredictor.from_pretrained(folder, precision="fp32")


def test_a_two_class_prediction_has_no_probabilities_field():
    assert "probabilities" not in Prediction("Positive", 0.9, 0.9).to_dict()


def test_the_service_refuses_a_checkpoint_it_cannot_read_before_starting(tmp_path, capsys):
    from model_api.__main__ import main

    folder = tiny_checkpoint(tmp_path, {0: "LABEL_0", 1: "LABEL_1", 2: "LABEL_2"})
    assert main(["--model", str(folder), "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "cannot be served" in err and "name them negative, neutral and positive" in err
