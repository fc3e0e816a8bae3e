"""The three-class fine-tune: the head that grows a neutral output, the mixed loss, the
probability map fitted to the band, and the three-class files."""

import numpy as np
import pytest
import torch

from experiments.bert_config import TrainConfig
from experiments.bert_fit import _batch_loss, mixed_loss
from experiments.bert_writer import model_name
from experiments.calibration import band_classes, best_edges, fit_map
from experiments.data import read_three_class
from experiments.train_bert import widen_head
from sentiment.labels import ProbabilityMap

pytestmark = pytest.mark.unit


def test_a_widened_head_keeps_the_two_class_decision_and_puts_neutral_between():
    model = torch.nn.Module()
    model.classifier = torch.nn.Linear(4, 2)
    model.config = type("Config", (), {})()
    x = torch.randn(16, 4)
    before = torch.softmax(model.classifier(x), 1)
    widen_head(model, ("negative", "neutral", "positive"))
    after = torch.softmax(model.classifier(x), 1)
    assert model.config.id2label == {0: "negative", 1: "neutral", 2: "positive"}
    # The same side wins, and P(positive) + P(neutral)/2 orders the rows as P(positive) did.
    assert torch.equal(after[:, 2] > after[:, 0], before[:, 1] > before[:, 0])
    p = after[:, 2] + after[:, 1] / 2
    assert torch.equal(torch.argsort(p), torch.argsort(before[:, 1]))


def test_binary_rows_are_scored_by_the_positive_probability_and_three_class_rows_by_their_class():
    logits = torch.tensor([[2.0, 0.0, -2.0], [-2.0, 3.0, -2.0]])
    # Row 0 says negative; as a binary row labelled negative it costs little, labelled positive a lot.
    cheap = mixed_loss(logits[:1], torch.tensor([0]), torch.tensor([True]))
    dear = mixed_loss(logits[:1], torch.tensor([2]), torch.tensor([True]))
    assert cheap < 0.3 < 1.0 < dear
    # Row 1 says neutral: as a three-class row its label decides; as a binary row it sits at 0.5.
    assert mixed_loss(logits[1:], torch.tensor([1]), torch.tensor([False])) < 0.1
    binary = mixed_loss(logits[1:], torch.tensor([2]), torch.tensor([True]))
    assert binary.item() == pytest.approx(-np.log(0.5), abs=0.05)
    # A two-class head is plain cross-entropy.
    two = torch.tensor([[0.3, -1.2]])
    assert torch.allclose(
        mixed_loss(two, torch.tensor([1]), None), torch.nn.functional.cross_entropy(two, torch.tensor([1]))
    )


def test_the_map_sends_the_best_raw_edges_to_the_band_and_the_best_split_to_one_half():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3000)
    # Raw probabilities crowded towards the top: neutral around 0.75, positive near 0.95.
    p = np.clip(np.choose(labels, [0.3, 0.75, 0.95]) + rng.normal(0, 0.06, 3000), 0, 1)
    low, high, score = best_edges(p, labels)
    assert 0.45 < low < 0.65 and 0.8 < high < 0.9 and score > 0.9
    binary = np.concatenate([rng.normal(0.3, 0.05, 500), rng.normal(0.95, 0.02, 500)])
    knots, found = fit_map(p, labels, binary, np.arange(1000) >= 500)
    calibrated = ProbabilityMap(knots)
    served = band_classes(calibrated(p), 0.4, 0.6)
    assert (served == band_classes(p, found["raw_low"], found["raw_high"])).mean() > 0.999
    assert ((calibrated(binary) > 0.5) == (np.arange(1000) >= 500)).mean() > 0.99
    assert calibrated(np.array([0.0, 1.0])).tolist() == [0.0, 1.0]


def test_a_map_must_be_monotone():
    with pytest.raises(ValueError, match="increasing knots"):
        ProbabilityMap(((0.0, 0.0), (0.5, 0.6), (0.4, 0.7), (1.0, 1.0)))
    with pytest.raises(ValueError, match="increasing knots"):
        ProbabilityMap(((0.0, 0.5), (1.0, 0.4)))


def test_three_class_files_of_both_formats_read_as_class_indices(tmp_path):
    tweeteval = tmp_path / "val.csv"
    tweeteval.write_text('label,text\nnegative,"bad, very bad"\nneutral,the train leaves at 5\npositive,lovely\n')
    assert read_three_class(tweeteval) == (["bad, very bad", "the train leaves at 5", "lovely"], [0, 1, 2])
    manual = tmp_path / "testdata.manual.2009.06.14.csv"
    manual.write_text(
        '"4","3","Mon May 11 03:17:40 UTC 2009","kindle2","tpryan","I love my Kindle2."\n'
        '"2","5","Mon May 11 03:18:03 UTC 2009","kindle2","vcu451","Reading my kindle2"\n'
        '"0","6","Mon May 11 03:18:54 UTC 2009","kindle2","chadfu","Fuck this economy."\n'
    )
    assert read_three_class(manual) == (["I love my Kindle2.", "Reading my kindle2", "Fuck this economy."], [2, 1, 0])
    bad = tmp_path / "bad.csv"
    bad.write_text("label,text\nmixed,hmm\n")
    with pytest.raises(ValueError, match="bad.csv:2: label 'mixed'"):
        read_three_class(bad)


class _FixedLogits(torch.nn.Module):
    """A classifier whose logits are given, whatever the tokens."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = torch.nn.Parameter(logits)

    def forward(self, input_ids, attention_mask):
        return type("Output", (), {"logits": self.logits})()


def test_where_the_binary_teacher_speaks_it_replaces_the_teachers_class_probabilities(tmp_path):
    config = TrainConfig(out=str(tmp_path), base_model="x", three_class="none", bf16=False, distill_weight=0.5)
    model = _FixedLogits(torch.zeros(2, 3))  # both rows: uniform, positive-probability 0.5
    y, flags = torch.tensor([1, 2]), torch.tensor([False, True])
    labels_only = (1 - config.distill_weight) * mixed_loss(torch.zeros(2, 3), y, flags).item()
    uniform = np.full((2, 3), 1 / 3)
    sure_negative = np.array([[1 / 3, 1 / 3, 1 / 3], [0.9, 0.05, 0.05]])

    def loss(teacher, binary):
        return _batch_loss(model, None, None, y, flags, teacher, binary, config).item()

    assert loss(uniform, None) == pytest.approx(labels_only, abs=1e-5)
    assert loss(sure_negative, None) > labels_only + 0.1  # row 1's teacher disagrees
    # The binary teacher's 0.5 on row 1 is what the student reads: no divergence left there.
    assert loss(sure_negative, np.array([np.nan, 0.5])) == pytest.approx(labels_only, abs=1e-5)
    assert loss(uniform, np.array([np.nan, 0.95])) > labels_only + 0.1


@pytest.mark.parametrize(
    ("base", "three_class", "layers", "teacher", "expected"),
    [
        ("MiniLM-L6-H384-uncased", "none", None, None, "MiniLM-L6-H384-uncased-sentiment140"),
        ("MiniLM-L6-H384-uncased-sentiment140", "SEMEVAL", None, None, "MiniLM-L6-H384-uncased-sentiment140-semeval"),
        (
            "MiniLM-L6-H384-uncased-sentiment140-semeval",
            "SEMEVAL",
            3,
            "t",
            "MiniLM-L6-H384-uncased-sentiment140-semeval-3-layers-distilled",
        ),
        # Retraining a cut, distilled model keeps what it is, named once.
        (
            "MiniLM-L6-H384-uncased-sentiment140-semeval-3-layers-distilled",
            "SEMEVAL",
            None,
            "t",
            "MiniLM-L6-H384-uncased-sentiment140-semeval-3-layers-distilled",
        ),
        (
            "MiniLM-L6-H384-uncased-sentiment140-3-layers-distilled",
            "SEMEVAL",
            None,
            None,
            "MiniLM-L6-H384-uncased-sentiment140-semeval-3-layers-distilled",
        ),
    ],
)
def test_a_retrained_model_names_its_data_and_layers_once(tmp_path, base, three_class, layers, teacher, expected):
    semeval = tmp_path / "semeval.csv"
    semeval.write_text("label,text\n1,a tweet\n")
    config = TrainConfig(
        out=str(tmp_path / "out"),
        base_model=base,
        three_class=str(semeval) if three_class == "SEMEVAL" else "none",
        layers=layers,
        teacher=teacher,
    )
    assert model_name(config) == expected
