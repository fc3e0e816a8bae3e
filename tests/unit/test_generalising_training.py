"""What the generalising recipe adds to the fine-tune: class-balanced cross-entropy, distillation
from soft labels with Sentiment140's labels unread, and a probability map fitted without labels."""

import numpy as np
import pytest
import torch

from experiments.bert_config import TrainConfig
from experiments.bert_fit import _batch_loss, class_weights, mixed_loss
from experiments.bert_writer import model_name
from experiments.calibration import agreement_map, band_classes
from experiments.soft_labels import write_soft_labels

pytestmark = pytest.mark.unit


class _FixedLogits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, input_ids=None, attention_mask=None):
        return type("Out", (), {"logits": self.logits})()


def test_balanced_weights_are_inverse_to_the_class_shares_with_mean_one_over_the_rows():
    labels = [0] * 10 + [1] * 30 + [2] * 60 + [2] * 50  # the last 50 are Sentiment140 rows: not counted
    binary = [False] * 100 + [True] * 50
    w = class_weights(labels, binary)
    assert w.tolist() == pytest.approx([100 / 30, 100 / 90, 100 / 180])
    per_row = w[torch.tensor(labels[:100])]
    assert per_row.mean().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="a class has no training row"):
        class_weights([0, 2], [False, False])


def test_a_weighted_class_costs_more_when_missed():
    logits = torch.tensor([[0.0, 2.0, 0.0]])  # says neutral
    plain = mixed_loss(logits, torch.tensor([0]), None)
    heavy = mixed_loss(logits, torch.tensor([0]), None, torch.tensor([3.0, 1.0, 0.5]))
    assert heavy.item() == pytest.approx(3 * plain.item())


def test_with_soft_labels_the_sentiment140_rows_learn_from_the_teacher_alone(tmp_path):
    soft = write_soft_labels(tmp_path / "soft.parquet", ["x"], np.array([[0.2, 0.3, 0.5]]), {})
    config = TrainConfig(out=str(tmp_path), base_model="x", three_class="none", bf16=False, soft_labels=str(soft))
    model = _FixedLogits(torch.tensor([[1.0, 0.0, -1.0], [0.5, 0.2, -0.3]]))
    flags = torch.tensor([False, True])
    teacher = np.array([[0.6, 0.3, 0.1], [0.2, 0.3, 0.5]])

    def loss(y):
        return _batch_loss(model, None, None, torch.tensor(y), flags, teacher, None, config).item()

    # The emoticon label of the Sentiment140 row (index 1) changes nothing; the SemEval row's does.
    assert loss([0, 0]) == pytest.approx(loss([0, 2]), abs=1e-6)
    assert loss([2, 0]) > loss([0, 0]) + 0.1


def test_soft_labels_replace_the_teachers(tmp_path):
    soft = write_soft_labels(tmp_path / "soft.parquet", ["x"], np.array([[0.2, 0.3, 0.5]]), {})
    with pytest.raises(ValueError, match="replaces --teacher"):
        TrainConfig(out=str(tmp_path), base_model="x", three_class="none", soft_labels=str(soft), teacher="t")
    with pytest.raises(ValueError, match="--soft-labels: no file"):
        TrainConfig(out=str(tmp_path), base_model="x", three_class="none", soft_labels=str(tmp_path / "none"))


def test_the_agreement_map_labels_as_the_most_likely_class():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet([1.0, 1.5, 1.0], 5000)
    mapped = agreement_map(probs)
    assert mapped(np.array([0.5]))[0] == pytest.approx(0.5)  # above it, P(positive) > P(negative)
    p = probs[:, 2] + probs[:, 1] / 2
    served = band_classes(mapped(p), 0.4, 0.6)
    agree = (served == probs.argmax(1)).mean()
    # No other pair of raw edges agrees more (checked on a grid).
    grid = np.linspace(0.2, 0.8, 61)
    best = max((band_classes(p, lo, hi) == probs.argmax(1)).mean() for lo in grid for hi in grid if lo < 0.5 < hi)
    assert agree >= best - 1e-9 and agree > 0.75
    # The polar sides are kept: what the map calls Positive has P(positive) > P(negative).
    assert (probs[served == 2, 2] > probs[served == 2, 0]).all()
    with pytest.raises(ValueError, match="at least one row"):
        agreement_map(np.empty((0, 3)))


def test_a_model_of_the_three_class_rows_alone_is_named_for_them(tmp_path):
    semeval = tmp_path / "semeval.csv"
    semeval.write_text("label,text\nneutral,a tweet\n")
    config = TrainConfig(
        out=str(tmp_path / "o"), base_model="all-mpnet-base-v2", three_class=str(semeval), binary_rows=0
    )
    assert model_name(config) == "all-mpnet-base-v2-semeval"
    with pytest.raises(ValueError, match="--binary-rows 0 leaves no training rows"):
        TrainConfig(out=str(tmp_path / "o"), base_model="x", three_class="none", binary_rows=0)
