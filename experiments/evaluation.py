"""Metrics for the comparison: binary quality, three-class quality with the neutral band, calibration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score

from experiments import data
from sentiment.labels import LABELS, NEUTRAL, POSITIVE, NeutralBand


def binary_metrics(probs: np.ndarray, labels: list[int]) -> dict:
    """Accuracy at 0.5, per-class precision, recall and F1, and ROC-AUC."""
    y = np.asarray(labels)
    pred = (probs > 0.5).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, pred, labels=[0, 1], zero_division=0)
    return {
        "accuracy": float(accuracy_score(y, pred)),
        "precision_neg": float(p[0]),
        "recall_neg": float(r[0]),
        "f1_neg": float(f[0]),
        "precision_pos": float(p[1]),
        "recall_pos": float(r[1]),
        "f1_pos": float(f[1]),
        "roc_auc": float(roc_auc_score(y, probs)) if len(set(y)) == 2 else float("nan"),
    }


def read_three_class(path: str | Path) -> tuple[list[str], list[str]]:
    """Texts and labels (Negative, Neutral, Positive) of a TweetEval ``label,text`` file or a
    Sentiment140-format file with polarity 0, 2 or 4 (:func:`experiments.data.read_three_class`).

    Raises:
        ValueError: when a label is not negative, neutral or positive.
    """
    texts, classes = data.read_three_class(Path(path))
    return texts, [LABELS[i] for i in classes]


def three_class_metrics(probs: np.ndarray, labels: list[str], band: NeutralBand) -> dict:
    """Three-class accuracy and macro-F1 with the band, and two-class accuracy on the polar rows."""
    pred = [band.label(float(p)) for p in probs]
    y = np.asarray(labels)
    polar = y != NEUTRAL
    two = float(np.mean((probs[polar] > 0.5) == (y[polar] == POSITIVE))) if polar.any() else float("nan")
    return {
        "accuracy_3class": float(accuracy_score(y, pred)),
        "macro_f1_3class": float(f1_score(y, pred, labels=list(LABELS), average="macro", zero_division=0)),
        "accuracy_2class_polar": two,
        "neutral_predicted": float(np.mean(np.asarray(pred) == NEUTRAL)),
    }


def fit_temperature(probs: np.ndarray, labels: list[int]) -> float:
    """Temperature T minimising the log-loss of ``sigmoid(logit(p) / T)`` (grid search, 0.25 to 4)."""
    y = np.asarray(labels, dtype=float)
    logits = _logit(probs)
    best_t, best_loss = 1.0, float("inf")
    for t in np.exp(np.linspace(np.log(0.25), np.log(4.0), 121)):
        q = np.clip(1 / (1 + np.exp(-logits / t)), 1e-7, 1 - 1e-7)
        loss = -np.mean(y * np.log(q) + (1 - y) * np.log(1 - q))
        if loss < best_loss:
            best_t, best_loss = float(t), loss
    return best_t


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    return 1 / (1 + np.exp(-_logit(probs) / temperature))


def _logit(probs: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(probs, dtype=float), 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def confusion(probs: np.ndarray, labels: list[str], band: NeutralBand) -> np.ndarray:
    return confusion_matrix(labels, [band.label(float(p)) for p in probs], labels=list(LABELS))


def folder_size_mb(paths: list[Path]) -> float:
    """Size on disk of model files and folders, leaving out derived caches (the ONNX export)."""
    total = 0
    for p in paths:
        if p.is_dir():
            total += sum(f.stat().st_size for f in p.rglob("*") if f.is_file() and "onnx" not in f.relative_to(p).parts)
        else:
            total += p.stat().st_size
    return round(total / 1e6, 2)


def macro_f1(labels: np.ndarray, predicted: np.ndarray, classes: int) -> float:
    """Macro-averaged F1 over ``classes`` class indices (a class never predicted scores 0)."""
    return float(f1_score(labels, predicted, labels=list(range(classes)), average="macro", zero_division=0))
