"""Distilling into fewer layers: which layers are kept, and the distillation loss."""

import pytest
import torch

from experiments.distillation import distillation_loss, kept_layers

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
