"""The three-class comparison: every family on human-labelled three-class tweets, read as served.

Each family learns from the training part of the three-class file (SemEval-2017 by default, split
by a hash of the text as Sentiment140 is): the linear models as three-class classifiers, the GRU and
LSTM on soft targets (negative 0, neutral 0.5, positive 1) of their one sigmoid output. The BERT
rows are the model directories trained by :mod:`experiments.train_bert` on the same training part
(with Sentiment140 mixed in), scored through the predictor as the service scores them. Every
family's positive-probability then goes through the same protocol as the served model: a probability
map fitted on TweetEval's validation split puts its best band edges at 0.4 and 0.6, and the band
labels each tweet. Results are given on that validation split (which the map saw), on the held-out
test part of the three-class file (which nothing saw) and on any Sentiment140-format test file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from experiments.calibration import band_classes, fit_map
from experiments.data import CLASSES, Split
from experiments.family import FitConfig, get_family
from experiments.plots import plot_confusion
from sentiment.labels import BAND_HIGH, BAND_LOW, ProbabilityMap


@dataclass(frozen=True)
class EvalSet:
    """Texts and class indices (0 negative, 1 neutral, 2 positive) of one evaluation set."""

    name: str
    texts: list[str]
    labels: list[int]


def three_class_scores(labels: np.ndarray, predicted: np.ndarray) -> dict:
    """Macro-F1, macro-averaged recall (TweetEval's official metric), accuracy and per-class F1."""
    precision, recall, f1, _ = precision_recall_fscore_support(labels, predicted, labels=[0, 1, 2], zero_division=0)
    return {
        "macro_f1": float(np.mean(f1)),
        "macro_recall": float(np.mean(recall)),
        "accuracy": float(np.mean(labels == predicted)),
        **{f"f1_{name}": float(v) for name, v in zip(CLASSES, f1, strict=True)},
    }


def evaluate_predictor(name: str, predict, calibration: EvalSet, sets: list[EvalSet], out: Path) -> dict:
    """Fit the probability map of one model on ``calibration``, label every set with the band,
    score it and draw its confusion matrices; return the row of the table."""
    started = time.monotonic()
    p_cal = np.asarray(predict(calibration.texts))
    seconds = time.monotonic() - started
    knots, found = fit_map(p_cal, np.asarray(calibration.labels))
    mapped = ProbabilityMap(knots)
    row: dict = {"model": name, "tweets_per_second": round(len(p_cal) / max(seconds, 1e-9), 1), **found}
    for s in sets:
        p = p_cal if s is calibration else np.asarray(predict(s.texts))
        predicted = band_classes(mapped(p), BAND_LOW, BAND_HIGH)
        labels = np.asarray(s.labels)
        row.update({f"{s.name}_{k}": round(v, 4) for k, v in three_class_scores(labels, predicted).items()})
        matrix = confusion_matrix(labels, predicted, labels=[0, 1, 2])
        plot_confusion(matrix, f"{name} on {s.name}", out / f"confusion3_{name}_{s.name}.png")
    return row


def family_predictors(models: list[str], split: Split, config: FitConfig, bert_dirs: list[Path], models_dir: Path):
    """``(name, predict, train seconds)`` of each family: trained on ``split`` (three classes), or
    for ``bert`` the model directories ``bert_dirs`` trained earlier."""
    for name in models:
        if name == "bert":
            from model_api.model.predictor import SentimentPredictor

            for folder in bert_dirs:
                predictor = SentimentPredictor.from_pretrained(folder, batch_size=128, precision="fp32")
                yield f"bert-{folder.name}", predictor.predict_proba, None
            continue
        family = get_family(name)
        print(f"compare: three classes: training {name}", flush=True)
        started = time.monotonic()
        fitted = family.fit(split, config)
        family.save(fitted, models_dir)
        seconds = time.monotonic() - started
        yield name, (lambda texts, family=family, fitted=fitted: family.predict(fitted, texts)), seconds


def run_three_class(
    models: list[str], split: Split, config: FitConfig, sets: list[EvalSet], bert_dirs: list[Path], out: Path
) -> list[dict]:
    """Train and evaluate every family on the three-class ``split``; ``sets[0]`` calibrates."""
    rows = []
    for name, predict, seconds in family_predictors(models, split, config, bert_dirs, out / "models3"):
        row = evaluate_predictor(name, predict, sets[0], sets, out)
        row["train_seconds"] = None if seconds is None else round(seconds, 1)
        rows.append(row)
        first = sets[1] if len(sets) > 1 else sets[0]
        print(f"compare: three classes: {name}: {first.name} macro-F1 {row[f'{first.name}_macro_f1']:.4f}", flush=True)
    return rows


def markdown_table(rows: list[dict], sets: list[str]) -> str:
    """One row per model: per set, macro-F1, macro recall, accuracy and the per-class F1."""
    head = ["model"]
    for s in sets:
        head += [f"{s} macro-F1", f"{s} macro recall", f"{s} acc %", f"{s} F1 neg/neu/pos"]
    head += ["raw edges", "train s", "tweets/s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"]]
        for s in sets:
            per_class = "/".join(f"{r[f'{s}_f1_{c}']:.2f}" for c in CLASSES)
            cells += [
                f"{r[f'{s}_macro_f1']:.3f}",
                f"{r[f'{s}_macro_recall']:.3f}",
                f"{100 * r[f'{s}_accuracy']:.1f}",
                per_class,
            ]
        seconds = "" if r["train_seconds"] is None else f"{r['train_seconds']:.0f}"
        cells += [f"{r['raw_low']:.2f}–{r['raw_high']:.2f}", seconds, f"{r['tweets_per_second']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
