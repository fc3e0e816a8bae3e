"""A smaller, faster BERT: keep fewer encoder layers and distil a trained teacher into them.

``keep_layers`` cuts a classifier down to N evenly spaced encoder layers (always its last one, whose
output the classifier head reads); ``distillation_loss`` mixes cross-entropy on the labels with the
divergence from the teacher's softened positive-probability, which ``teacher_probabilities`` scores
once before training.
"""

from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from model_api.predictor import SentimentPredictor


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
    logits: torch.Tensor, labels: torch.Tensor, teacher_p: torch.Tensor, temperature: float, weight: float
) -> torch.Tensor:
    """``weight`` x T^2 x KL(teacher || student) at temperature T, plus the rest x cross-entropy.

    ``teacher_p`` is the teacher's positive-probability (class 1); its logit difference is divided
    by T to soften it.
    """
    hard = torch.nn.functional.cross_entropy(logits, labels)
    p = teacher_p.clamp(1e-6, 1 - 1e-6)
    margin = torch.log(p) - torch.log1p(-p)
    soft_target = torch.sigmoid(margin / temperature)
    target = torch.stack([1 - soft_target, soft_target], dim=1)
    log_student = torch.log_softmax(logits / temperature, dim=1)
    soft = torch.nn.functional.kl_div(log_student, target, reduction="batchmean") * temperature**2
    return weight * soft + (1 - weight) * hard


def teacher_probabilities(
    teacher: str, texts: list[str], precision: str = "int8-static", chunk: int = 4096
) -> np.ndarray:
    """The teacher model's positive-probability of each text, scored by the service's engine
    ``precision`` (int8-static by default: as accurate as fp32, and faster; see docs/performance.md), with progress."""
    predictor = SentimentPredictor.from_pretrained(teacher, batch_size=128, precision=precision)
    out = np.empty(len(texts))
    with tqdm(total=len(texts), desc="teacher", unit="tweet", mininterval=5) as progress:
        for start in range(0, len(texts), chunk):
            out[start : start + chunk] = predictor.predict_proba(texts[start : start + chunk])
            progress.update(min(chunk, len(texts) - start))
    return out
