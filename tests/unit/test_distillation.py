"""Distilling into fewer layers: which layers are kept, the distillation losses, and the teachers."""

import joblib
import numpy as np
import pytest
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from experiments.bert_config import TrainConfig
from experiments.distillation import binary_distillation_loss, distillation_loss, kept_layers, teacher_probabilities

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("total", "keep", "expected"),
    [(6, 3, [1, 3, 5]), (6, 2, [2, 5]), (6, 1, [5]), (6, 6, [0, 1, 2, 3, 4, 5]), (12, 4, [2, 5, 8, 11])],
)
def test_kept_layers_are_evenly_spaced_and_end_with_the_last(total, keep, expected):
    assert kept_layers(total, keep) == expected


@pytest.mark.parametrize("keep", [0, 7])
def test_kept_layers_rejects_impossible_counts(keep):
    with pytest.raises(ValueError, match=f"cannot keep {keep} of 6"):
        kept_layers(6, keep)


def test_the_teacher_term_vanishes_when_the_student_matches_the_teacher():
    teacher = torch.tensor([0.9, 0.2, 0.6, 0.5])
    margin = torch.log(teacher / (1 - teacher))
    matching = torch.stack([torch.zeros(4), margin], dim=1)  # softmax gives the teacher's probability
    for temperature in (1.0, 2.0, 4.0):
        assert distillation_loss(matching, teacher, temperature).item() == pytest.approx(0.0, abs=1e-6)
        other = matching + torch.tensor([[0.0, 0.5]])
        assert distillation_loss(other, teacher, temperature).item() > 1e-3


def test_a_three_class_teacher_is_matched_class_by_class():
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    matching = torch.log(teacher)
    assert distillation_loss(matching, teacher, 2.0).item() == pytest.approx(0.0, abs=1e-6)
    swapped = matching[:, [0, 2, 1]]  # neutral and positive exchanged
    assert distillation_loss(swapped, teacher, 2.0).item() > 0.1


def test_the_teacher_term_pulls_the_student_towards_the_teacher():
    logits = torch.zeros(1, 2, requires_grad=True)
    # The teacher is fairly sure it is positive.
    distillation_loss(logits, torch.tensor([0.8]), 2.0).backward()
    assert logits.grad[0, 1] < 0 < logits.grad[0, 0]  # a step raises the positive logit


def test_per_row_divergences_average_to_the_batch_divergence():
    teacher = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4]])
    logits = torch.tensor([[0.5, 0.0, -0.5], [0.0, 1.0, 0.0], [2.0, -1.0, 0.0]])
    rows = distillation_loss(logits, teacher, 2.0, per_row=True)
    assert rows.shape == (3,)
    assert rows.mean().item() == pytest.approx(distillation_loss(logits, teacher, 2.0).item())


def test_a_binary_teacher_is_matched_on_the_positive_probability_alone():
    # Both rows read 0.5 as P(positive) + P(neutral)/2: all neutral, or split between the sides.
    logits = torch.log(torch.tensor([[1e-6, 1.0, 1e-6], [0.5, 1e-6, 0.5]]))
    assert binary_distillation_loss(logits, torch.tensor([0.5, 0.5])).abs().max().item() < 1e-4
    assert (binary_distillation_loss(logits, torch.tensor([0.9, 0.1])) > 0.3).all()


def test_a_binary_teacher_pulls_the_positive_probability_towards_its_own():
    logits = torch.zeros(1, 3, requires_grad=True)  # reads 0.5
    binary_distillation_loss(logits, torch.tensor([0.9])).sum().backward()
    assert logits.grad[0, 2] < 0 < logits.grad[0, 0]  # a step raises positive, lowers negative


def _saved_pipeline(path, labels):
    texts = ["good day", "bad day", "a day", "great fun", "awful mess", "the news"] * 3
    pipeline = make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(texts, (labels * 6)[: len(texts)])
    joblib.dump(pipeline, path)
    return pipeline


def test_teachers_joined_by_plus_are_averaged(tmp_path):
    first = _saved_pipeline(tmp_path / "first.joblib", [2, 0, 1])
    second = _saved_pipeline(tmp_path / "second.joblib", [0, 1, 2])
    texts = ["good news", "bad fun"]
    both = teacher_probabilities(f"{tmp_path / 'first.joblib'}+{tmp_path / 'second.joblib'}", texts, classes=3)
    expected = (first.predict_proba(texts) + second.predict_proba(texts)) / 2
    assert np.allclose(both, expected)
    positive = teacher_probabilities(str(tmp_path / "first.joblib"), texts, classes=2)
    assert np.allclose(positive, first.predict_proba(texts)[:, 2] + first.predict_proba(texts)[:, 1] / 2)


def test_a_scikit_learn_teacher_without_three_classes_is_refused(tmp_path):
    _saved_pipeline(tmp_path / "two.joblib", [0, 1, 1])
    with pytest.raises(ValueError, match="must have three classes"):
        teacher_probabilities(str(tmp_path / "two.joblib"), ["a day"], classes=3)


def test_a_binary_teacher_needs_a_teacher_and_three_classes(tmp_path):
    with pytest.raises(ValueError, match="--binary-teacher needs a --teacher"):
        TrainConfig(out=str(tmp_path), base_model="x", three_class="none", teacher="t", binary_teacher="b")
    with pytest.raises(ValueError, match="--binary-teacher needs a --teacher"):
        TrainConfig(out=str(tmp_path), base_model="x", three_class="none", binary_teacher="b")
