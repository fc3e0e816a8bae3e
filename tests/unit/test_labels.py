import pytest

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE, NeutralBand, confidence

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("p", "label"),
    [
        (0.0, NEGATIVE),
        (0.3999, NEGATIVE),
        (0.4, NEUTRAL),
        (0.5, NEUTRAL),
        (0.6, NEUTRAL),
        (0.6001, POSITIVE),
        (1.0, POSITIVE),
    ],
)
def test_default_band_is_inclusive(p, label):
    assert NeutralBand().label(p) == label


def test_custom_band():
    band = NeutralBand(0.3, 0.7)
    assert [band.label(p) for p in (0.29, 0.3, 0.7, 0.71)] == [NEGATIVE, NEUTRAL, NEUTRAL, POSITIVE]


@pytest.mark.parametrize(("low", "high"), [(0.7, 0.6), (-0.1, 0.5), (0.5, 1.1)])
def test_invalid_band(low, high):
    with pytest.raises(ValueError, match="neutral band"):
        NeutralBand(low, high)


def test_confidence_is_the_larger_class_probability():
    assert confidence(0.2) == pytest.approx(0.8)
    assert confidence(0.9) == pytest.approx(0.9)


def test_a_prediction_unpickles_without_importing_the_model_code():
    # The HTTP worker receives the model process's predictions pickled; importing torch to read
    # the first of them held every request of the first seconds after start-up for 2.4 s.
    import pickle
    import subprocess
    import sys
    from pathlib import Path

    from sentiment.labels import Prediction

    blob = pickle.dumps([Prediction(POSITIVE, 0.9, 0.9)])
    code = (
        "import pickle, sys; p = pickle.loads(sys.stdin.buffer.read()); "
        "print(p[0].to_dict()['sentiment'], 'torch' in sys.modules, 'model_api.model.predictor' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, cwd=root, check=True)
    assert out.stdout.decode().split() == [POSITIVE, "False", "False"]
