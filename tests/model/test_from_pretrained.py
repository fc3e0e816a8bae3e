"""``SentimentPredictor.from_pretrained``: a predictor that loads itself, its engine chosen by what
the CPU has unless told; the service's settings load through ``from_config``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from model_api.model.engines import auto_precision
from model_api.model.predictor import FAST_MODEL_DIR, SentimentPredictor
from sentiment.config import Config

pytestmark = pytest.mark.model


def test_a_loaded_predictor_labels_texts_on_the_engine_this_cpu_runs_fastest():
    predictor = SentimentPredictor.from_pretrained(FAST_MODEL_DIR)
    assert predictor.describe()["precision"] == auto_precision()
    loved, hated = predictor.predict(["what a wonderful day, I love it", "this is awful, I hate it"])
    assert (loved.sentiment, hated.sentiment) == ("Positive", "Negative")
    assert sum(loved.probabilities) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("vnni", "expected"), [(True, "int8"), (False, "fp32")])
def test_auto_is_int8_only_where_the_cpu_has_int8_dot_products(monkeypatch, vnni, expected):
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: vnni)
    assert auto_precision() == expected


def test_a_told_precision_is_the_one_served_and_the_labels_agree():
    texts = ["lovely concert tonight", "worst flight ever", "the meeting is at noon", "not bad at all"]
    fp32 = SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="fp32")
    int8 = SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="int8")
    assert (fp32.describe()["precision"], int8.describe()["precision"]) == ("fp32", "int8")
    assert int8.predict_proba(texts) == pytest.approx(fp32.predict_proba(texts), abs=0.1)


def test_the_service_settings_load_through_from_config():
    config = Config()
    config = dataclasses.replace(
        config,
        service=dataclasses.replace(
            config.service, model=str(FAST_MODEL_DIR), precision="fp32", inference_batch=8, pack_texts=False
        ),
    )
    predictor = SentimentPredictor.from_config(config)
    assert (predictor.describe()["precision"], predictor.batch_size, predictor.packed) == ("fp32", 8, False)
    assert predictor.describe()["name"] == SentimentPredictor.from_pretrained(FAST_MODEL_DIR).describe()["name"]


def test_a_checkpoint_read_without_an_engine_says_how_to_load_one():
    bare = SentimentPredictor.read_checkpoint(FAST_MODEL_DIR)
    with pytest.raises(RuntimeError, match="from_pretrained"):
        bare.predict(["hello"])
