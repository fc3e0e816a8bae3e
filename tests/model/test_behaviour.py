"""Behaviour of the bundled models: direction, neutral statements, negation, invariance to mentions
and URLs, accuracy on Sentiment140, on human-labelled three-class tweets and on out-of-domain ones.

The direction, negation, invariance and accuracy checks run on both bundled models: the 6-layer
default (``models/default``) and the 3-layer one cut from it (``models/fast``).
"""

import json

import numpy as np
import pytest

from model_api.model.predictor import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, SentimentPredictor
from sentiment.cleaning import normalise_all
from sentiment.model_dir import METADATA_FILE
from sentiment.sentiment140 import read_labelled
from tests.conftest import SAMPLE

pytestmark = pytest.mark.model

# Both bundled models on TweetEval's validation split, as served (docs/experiments.md has the figures:
# 0.657 and 0.645; the models are chosen on out-of-domain tweets, not on this split).
MIN_MACRO_F1 = 0.63
# Binary accuracy (p_positive > 0.5) on Sentiment140 rows: the models learn no emoticon label, and
# score 74.8% and 73.7% on the test split (docs/experiments.md).
MIN_SENTIMENT140_ACCURACY = 0.72
# Macro-F1 as served on 3,000-tweet samples of the out-of-domain sets; on the whole sets the default
# scores 0.563, 0.675 and 0.576 and the 3-layer 0.535, 0.656 and 0.528 (docs/experiments.md).
OOD_FLOORS = {
    "default": {"gop_debate_2015": 0.53, "apple_2014": 0.64, "coachella_2015": 0.54},
    "fast": {"gop_debate_2015": 0.50, "apple_2014": 0.62, "coachella_2015": 0.49},
}


@pytest.fixture(scope="module", params=["default", "fast"])
def bundled(request, predictor):
    """Each bundled model in turn (the session's predictor is the default one)."""
    return (
        predictor
        if request.param == "default"
        else SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="fp32")
    )


@pytest.mark.parametrize("text", ["I love this", "what a wonderful day, so happy!", "best concert ever :)"])
def test_clearly_positive(bundled, text):
    assert bundled.predict([text])[0].sentiment == "Positive"


@pytest.mark.parametrize("text", ["I hate this", "worst day ever, so sad", "my phone broke again. ugh"])
def test_clearly_negative(bundled, text):
    assert bundled.predict([text])[0].sentiment == "Negative"


@pytest.mark.parametrize(
    "text",
    [
        "The meeting is scheduled for 3pm on Thursday.",  # a fact
        "What time does the game start tonight?",  # a question
        "New episode airs Friday at 8pm on NBC",  # an announcement
        "Senate votes on the budget bill tomorrow",  # a headline
        "The president will speak at 10am tomorrow",
        "Is anyone going to the conference in Boston next week?",
    ],
)
def test_statements_questions_announcements_and_headlines_are_neutral(bundled, text):
    prediction = bundled.predict([text])[0]
    assert prediction.sentiment == "Neutral", (text, prediction)
    assert max(prediction.probabilities) == prediction.probabilities[1]  # the model's own most likely class


@pytest.mark.parametrize(
    ("plain", "negated"),
    [("this movie is good", "this movie is not good"), ("I am happy today", "I am not happy today")],
)
def test_negation_lowers_the_positive_probability(bundled, plain, negated):
    p_plain, p_negated = bundled.predict_proba([plain, negated])
    assert p_plain > 0.5
    assert p_negated < p_plain - 0.2


@pytest.mark.parametrize("text", ["I love this new song", "I hate waiting in line", "so tired of this rain"])
def test_mentions_and_urls_do_not_change_the_label(bundled, text):
    variants = [text, f"@somebody {text}", f"{text} http://t.co/abc123", f"@a @b {text} www.example.com/x"]
    labels = {p.sentiment for p in bundled.predict(variants)}
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


def test_accuracy_on_the_held_out_sample(bundled):
    # The bundled sample is drawn from the test split the model never trained on.
    texts, polarities = read_labelled(SAMPLE)
    probs = bundled.predict_proba(texts)
    accuracy = float(np.mean((probs > 0.5) == (np.array(polarities) == 4)))
    assert accuracy >= MIN_SENTIMENT140_ACCURACY, f"accuracy {accuracy:.3f} on {len(texts)} held-out tweets"


@pytest.mark.parametrize(("precision", "tolerance"), [("onnx", 1e-4), ("bf16", 0.02)])
def test_engines_agree_with_fp32(predictor, precision, tolerance):
    from model_api.model.predictor import DEFAULT_MODEL_DIR

    texts = ["I love this", "worst day ever", "meh", "a long tweet that goes on and on about the weather " * 4]
    other = SentimentPredictor.from_pretrained(DEFAULT_MODEL_DIR, precision=precision)
    assert other.predict_proba(texts) == pytest.approx(predictor.predict_proba(texts), abs=tolerance)


def padded(predictor, batch_size=64):
    """The same model and engine, one text per row."""

    from model_api.model.engine_setup import prepare_engine

    model = SentimentPredictor(predictor.model, predictor.tokenizer, predictor.info, batch_size=batch_size, pack=False)
    prepare_engine(model)
    return model


def test_unpacked_batches_are_sorted_by_token_count_and_padded_to_their_longest(predictor):
    texts = ["ok", "a much longer tweet with many more words in it than the others", "fine then", "hi there you"]
    prepared = predictor.preprocess(texts)
    batches = list(padded(predictor)._batches(prepared))
    seen = [i for idx, _ in batches for i in idx]
    assert sorted(seen) == list(range(len(texts)))
    lengths = [int(mask.sum(axis=1).max()) for _, (_, mask) in batches]
    for _, (ids, mask) in batches:
        assert ids.shape == mask.shape and ids.shape[1] == int(mask.sum(axis=1).max())  # no column of padding only
    token_counts = [int(m) for _, (_, mask) in batches for m in mask.sum(axis=1)]
    assert token_counts == sorted(token_counts) and lengths == sorted(lengths)


def test_packed_passes_score_like_padded_ones(predictor):
    # The bundled models are BERT classifiers, so the service packs several tweets per row.

    texts, _ = read_labelled(SAMPLE)
    texts = texts[:600]
    from model_api.model.engine_setup import prepare_engine

    packed = SentimentPredictor(predictor.model, predictor.tokenizer, predictor.info, batch_size=8)
    prepare_engine(packed)
    assert packed.packed and len(list(packed._batches(packed.preprocess(texts)))) > 1
    assert packed.predict_proba(texts) == pytest.approx(padded(predictor).predict_proba(texts), abs=1e-4)


@pytest.mark.slow
def test_compiled_int8_engine_keeps_the_labels(predictor):
    # The service's default engine: static int8 compiled by Inductor, calibrated on training tweets.
    from model_api.model.predictor import DEFAULT_MODEL_DIR

    texts, polarities = read_labelled(SAMPLE)
    texts, truth = texts[:1000], np.array(polarities[:1000]) == 4
    int8 = SentimentPredictor.from_pretrained(DEFAULT_MODEL_DIR, precision="int8-static")
    p32, p8 = predictor.predict_proba(texts), int8.predict_proba(texts)
    assert float(np.mean((p8 > 0.5) == (p32 > 0.5))) >= 0.97
    assert abs(float(np.mean((p8 > 0.5) == truth)) - float(np.mean((p32 > 0.5) == truth))) <= 0.015
    assert int8.predict_proba(["I love this"])[0] > 0.6 and int8.predict_proba(["I hate this"])[0] < 0.4


def test_three_class_quality_on_human_labelled_tweets(bundled):
    # TweetEval's validation split: human labels, 45% neutral; the band labels it as served.
    from experiments.evaluation import read_three_class
    from tests.conftest import shared_data_dir

    data = shared_data_dir()
    if data is None or not (data / "tweeteval" / "val.csv").is_file():
        pytest.skip("needs the shared TweetEval validation split")
    texts, labels = read_three_class(data / "tweeteval" / "val.csv")
    predicted = [p.sentiment for p in bundled.predict(texts)]
    from sklearn.metrics import f1_score

    macro_f1 = f1_score(labels, predicted, average="macro")
    assert macro_f1 >= MIN_MACRO_F1, f"macro-F1 {macro_f1:.3f} on {len(texts)} tweets"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["default", "fast"])
@pytest.mark.parametrize("name", ["gop_debate_2015", "apple_2014", "coachella_2015"])
def test_labels_hold_up_on_out_of_domain_tweets(predictor, kind, name):
    """Crowd-labelled tweets of topics and years the models never saw, labelled as served."""
    from sklearn.metrics import f1_score

    from experiments.evaluation import read_three_class
    from tests.conftest import shared_data_dir

    data = shared_data_dir()
    if data is None or not (data / "ood" / f"{name}.csv").is_file():
        pytest.skip("needs the shared out-of-domain sets")
    texts, labels = read_three_class(data / "ood" / f"{name}.csv")
    keep = np.random.default_rng(13).permutation(len(texts))[:3000]
    model = predictor if kind == "default" else SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="fp32")
    predicted = [p.sentiment for p in model.predict([texts[i] for i in keep])]
    macro_f1 = f1_score([labels[i] for i in keep], predicted, average="macro")
    assert macro_f1 >= OOD_FLOORS[kind][name], f"macro-F1 {macro_f1:.3f} on {len(keep)} tweets of {name}"
