"""A smaller, faster BERT: keep fewer encoder layers and distil a trained teacher into them.

``keep_layers`` cuts a classifier down to N evenly spaced encoder layers (always its last one, whose
output the classifier head reads); ``distillation_loss`` is the divergence from the teacher's
softened class probabilities, which ``teacher_probabilities`` scores once before training (the fit
loop mixes it with the loss on the labels).
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from model_api.engine_setup import load_model


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


def distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 x KL(teacher || student) at temperature T.

    ``teacher`` holds the teacher's class probabilities, one row per text in the student's class
    order, or (a two-class student) its positive-probabilities; the teacher's log-probabilities
    are divided by T to soften them.
    """
    if teacher.dim() == 1:
        teacher = torch.stack([1 - teacher, teacher], dim=1)
    soft_target = torch.softmax(torch.log(teacher.clamp(1e-6, 1.0)) / temperature, dim=1)
    log_student = torch.log_softmax(logits / temperature, dim=1)
    return torch.nn.functional.kl_div(log_student, soft_target, reduction="batchmean") * temperature**2


def teacher_probabilities(
    teacher: str, texts: list[str], precision: str = "int8-static", classes: int = 2, chunk: int = 4096
) -> np.ndarray:
    """The teacher model's positive-probability of each text (``classes = 2``), or its
    (negative, neutral, positive) probabilities (``classes = 3``), scored by the service's engine
    ``precision`` (int8-static by default: as accurate as fp32, and faster; see
    docs/performance.md), with progress. The positive-probability is the teacher's own,
    before any probability map."""
    predictor = load_model(teacher, batch_size=128, precision=precision)
    out = np.empty((len(texts), 3))
    with tqdm(total=len(texts), desc="teacher", unit="tweet", mininterval=5) as progress:
        for start in range(0, len(texts), chunk):
            out[start : start + chunk] = predictor.class_proba(texts[start : start + chunk])
            progress.update(min(chunk, len(texts) - start))
    if classes == 3:
        return out
    return out[:, 2] + out[:, 1] / 2
