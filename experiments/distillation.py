"""A smaller, faster BERT: keep fewer encoder layers and distil a trained teacher into them.

``keep_layers`` cuts a classifier down to N evenly spaced encoder layers (always its last one, whose
output the classifier head reads); ``distillation_loss`` is the divergence from the teacher's
softened class probabilities, which ``teacher_probabilities`` scores once before training (the fit
loop mixes it with the loss on the labels).

A teacher may be several models joined by ``+`` (their class probabilities are averaged): model
directories, or scikit-learn pipelines saved by ``experiments.compare`` (``.joblib``, three
classes). A second, two-class teacher may speak for the Sentiment140 rows alone
(``binary_distillation_loss``): those rows only say which side of neutral a tweet is on, so the
student is matched on its positive-probability there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from model_api.model.predictor import SentimentPredictor


def kept_layers(total: int, keep: int) -> list[int]:
    """Indices of ``keep`` evenly spaced layers out of ``total``, always ending with the last.

    Raises:
        ValueError: if ``keep`` is not within 1..``total``.
    """
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers")
    step = total / keep
    return [total - 1 - int(i * step) for i in range(keep)][::-1]


def keep_layers(model: torch.nn.Module, keep: int) -> list[int]:
    """Cut a BERT-family classifier down to ``keep`` of its encoder layers (in place)."""
    encoder = model.base_model.encoder
    indices = kept_layers(len(encoder.layer), keep)
    encoder.layer = torch.nn.ModuleList(encoder.layer[i] for i in indices)
    model.config.num_hidden_layers = keep
    for new, layer in enumerate(encoder.layer):  # attention caches are indexed by layer
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    return indices


def distillation_loss(
    logits: torch.Tensor, teacher: torch.Tensor, temperature: float, per_row: bool = False
) -> torch.Tensor:
    """T^2 x KL(teacher || student) at temperature T, averaged over the batch (or one per row).

    ``teacher`` holds the teacher's class probabilities, one row per text in the student's class
    order, or (a two-class student) its positive-probabilities; the teacher's log-probabilities
    are divided by T to soften them.
    """
    if teacher.dim() == 1:
        teacher = torch.stack([1 - teacher, teacher], dim=1)
    soft_target = torch.softmax(torch.log(teacher.clamp(1e-6, 1.0)) / temperature, dim=1)
    log_student = torch.log_softmax(logits / temperature, dim=1)
    rows = torch.nn.functional.kl_div(log_student, soft_target, reduction="none").sum(dim=1) * temperature**2
    return rows if per_row else rows.mean()


def positive_probability(logits: torch.Tensor) -> torch.Tensor:
    """A three-class head's positive-probability ``P(positive) + P(neutral) / 2``, the one the
    service reads, kept off 0 and 1 for the logarithms of the losses."""
    probs = torch.softmax(logits, dim=1)
    return (probs[:, 2] + probs[:, 1] / 2).clamp(1e-6, 1 - 1e-6)


def binary_distillation_loss(logits: torch.Tensor, teacher_p: torch.Tensor) -> torch.Tensor:
    """Per row, the divergence KL(teacher || student) of the two-sided reading: the student's
    positive-probability ``P(positive) + P(neutral) / 2`` against the teacher's ``teacher_p``."""
    p = positive_probability(logits)
    t = teacher_p.clamp(1e-6, 1 - 1e-6)
    return t * torch.log(t / p) + (1 - t) * torch.log((1 - t) / (1 - p))


def teacher_probabilities(
    teacher: str, texts: list[str], precision: str = "int8-static", classes: int = 2, chunk: int = 4096
) -> np.ndarray:
    """The teacher's positive-probability of each text (``classes = 2``), or its (negative,
    neutral, positive) probabilities (``classes = 3``); a teacher of several models joined by
    ``+`` gives their mean. Model directories are scored by the service's engine ``precision``
    (int8-static by default: as accurate as fp32, and faster; see docs/performance.md), with
    progress; the positive-probability is the teacher's own, before any probability map.

    Raises:
        ValueError: for a scikit-learn teacher without three classes.
    """
    parts = [part for part in teacher.split("+") if part]
    out = sum(_class_probabilities(part, texts, precision, chunk) for part in parts) / len(parts)
    if classes == 3:
        return out
    return out[:, 2] + out[:, 1] / 2


def _class_probabilities(teacher: str, texts: list[str], precision: str, chunk: int) -> np.ndarray:
    """One teacher's (negative, neutral, positive) probabilities of ``texts``."""
    if teacher.endswith(".joblib"):
        import joblib

        pipeline = joblib.load(Path(teacher))
        if len(pipeline.classes_) != 3:
            raise ValueError(
                f"teacher {teacher}: a scikit-learn teacher must have three classes, not {pipeline.classes_}"
            )
        return pipeline.predict_proba(texts)
    predictor = SentimentPredictor.from_pretrained(teacher, batch_size=128, precision=precision)
    out = np.empty((len(texts), 3))
    with tqdm(total=len(texts), desc=f"teacher {Path(teacher).name}", unit="tweet", mininterval=5) as progress:
        for start in range(0, len(texts), chunk):
            out[start : start + chunk] = predictor.class_proba(texts[start : start + chunk])
            progress.update(min(chunk, len(texts) - start))
    return out
