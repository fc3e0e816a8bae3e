"""Behaviour of the bundled model: direction, negation, invariance to mentions and URLs, accuracy."""

import json

import numpy as np
import pytest

from model_api.predictor import DEFAULT_MODEL_DIR, METADATA_FILE
from sentiment.cleaning import normalise_all
from sentiment.sentiment140 import read_labelled
from tests.conftest import SAMPLE

pytestmark = pytest.mark.model


@pytest.mark.parametrize("text", ["I love this", "what a wonderful day, so happy!", "best concert ever :)"])
def test_clearly_positive(predictor, text):
    assert predictor.predict([text])[0].sentiment == "Positive"


@pytest.mark.parametrize("text", ["I hate this", "worst day ever, so sad", "my phone broke again. ugh"])
def test_clearly_negative(predictor, text):
    assert predictor.predict([text])[0].sentiment == "Negative"


@pytest.mark.parametrize(
    ("plain", "negated"),
    [("this movie is good", "this movie is not good"), ("I am happy today", "I am not happy today")],
)
def test_negation_lowers_the_positive_probability(predictor, plain, negated):
    p_plain, p_negated = predictor.predict_proba([plain, negated])
    assert p_plain > 0.5
    assert p_negated < p_plain - 0.2


@pytest.mark.parametrize("text", ["I love this new song", "I hate waiting in line", "so tired of this rain"])
def test_mentions_and_urls_do_not_change_the_label(predictor, text):
    variants = [text, f"@somebody {text}", f"{text} http://t.co/abc123", f"@a @b {text} www.example.com/x"]
    labels = {p.sentiment for p in predictor.predict(variants)}
    assert len(labels) == 1


def test_predict_keeps_input_order(predictor):
    texts = ["I love it", "a much longer text that says that I really hate every single bit of it", "hate"]
    one_by_one = [predictor.predict_proba([t])[0] for t in texts]
    assert predictor.predict_proba(texts) == pytest.approx(one_by_one, abs=1e-4)


def test_long_text_is_truncated(predictor):
    assert 0.0 <= predictor.predict(["so good " * 2000])[0].p_positive <= 1.0


def test_serving_uses_the_training_preprocessing(predictor):
    # Train/serve parity: the model directory records its preprocessing and the predictor applies it.
    recorded = json.loads((DEFAULT_MODEL_DIR / METADATA_FILE).read_text())["preprocessing"]
    texts = ["@user1 I &lt;3 this http://x.co #Great", "  spaced   out  "]
    assert predictor.info.preprocessing == recorded
    assert predictor.preprocess(texts) == normalise_all(texts, recorded)


def test_accuracy_on_the_held_out_sample(predictor):
    # The bundled sample is drawn from the test split the model never trained on.
    texts, polarities = read_labelled(SAMPLE)
    probs = predictor.predict_proba(texts)
    accuracy = float(np.mean((probs > 0.5) == (np.array(polarities) == 4)))
    assert accuracy >= 0.80, f"accuracy {accuracy:.3f} on {len(texts)} held-out tweets"


@pytest.mark.parametrize(("precision", "tolerance"), [("onnx", 1e-4), ("bf16", 0.02)])
def test_engines_agree_with_fp32(predictor, precision, tolerance):
    from model_api.predictor import DEFAULT_MODEL_DIR, SentimentPredictor

    texts = ["I love this", "worst day ever", "meh", "a long tweet that goes on and on about the weather " * 4]
    other = SentimentPredictor.from_pretrained(DEFAULT_MODEL_DIR, precision=precision)
    assert other.predict_proba(texts) == pytest.approx(predictor.predict_proba(texts), abs=tolerance)
