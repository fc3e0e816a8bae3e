"""Fit a model's probability map so that the neutral band's default edges are its best edges.

Usage: python -m experiments.calibration --model DIR [--val FILE] [--binary-val FILE]

A model's positive-probability is mapped by a monotone, piecewise-linear function stored in its
``tweet_sentiment.json`` (``probability_map``) and applied by the predictor. The map sends the two
raw probabilities between which Neutral scores the best macro-F1 on a three-class development set
(TweetEval's validation split by default) to the band's edges, 0.4 and 0.6, and the raw
probability that best splits Sentiment140's negatives from its positives to 0.5, so that the
binary reading (``p_positive > 0.5``) stays the model's best. Labels depend only on where a
probability falls among the knots, so moving ``band.low``/``band.high`` away from 0.4/0.6 moves
the edges along the calibrated scale.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path

import numpy as np

from experiments.data import TWEETEVAL_VAL, read_three_class, shared_file
from experiments.evaluation import macro_f1
from sentiment.labels import BAND_HIGH, BAND_LOW, ClassLayout, ProbabilityMap
from sentiment.logs import setup_logging
from sentiment.model_dir import read_model_info, write_model_info

log = logging.getLogger("experiments.calibration")

# Rows of class probabilities in the experiments' order (negative, neutral, positive).
CLASS_ORDER = ClassLayout(negative=0, positive=2, neutral=1)


def band_classes(p: np.ndarray, low: float, high: float) -> np.ndarray:
    """Class indices (0 negative, 1 neutral, 2 positive) of the band ``[low, high]``."""
    return np.where(p < low, 0, np.where(p > high, 2, 1))


def best_edges(p: np.ndarray, labels: np.ndarray, grid: int = 120) -> tuple[float, float, float]:
    """The edges ``(low, high)`` of the band on raw probabilities ``p`` that give the best
    macro-F1 against three-class ``labels``, and that macro-F1. Candidates are ``grid``
    quantiles of ``p``."""
    candidates = np.unique(np.quantile(p, np.linspace(0.01, 0.99, grid)))
    best = (-1.0, 0.0, 1.0)
    for i, low in enumerate(candidates):
        for high in candidates[i:]:
            score = macro_f1(labels, band_classes(p, low, high), 3)
            if score > best[0]:
                best = (score, float(low), float(high))
    return best[1], best[2], best[0]


def best_split(p: np.ndarray, positive: np.ndarray, low: float, high: float) -> float:
    """The threshold within ``(low, high)`` that best separates binary labels (accuracy of
    ``p > t``); the middle of the band when there are no binary rows."""
    if not len(p):
        return (low + high) / 2
    candidates = np.unique(np.clip(np.quantile(p, np.linspace(0.0, 1.0, 401)), low, high))
    candidates = candidates[(candidates > low) & (candidates < high)]
    if not len(candidates):
        return (low + high) / 2
    accuracy = [float(((p > t) == positive).mean()) for t in candidates]
    return float(candidates[int(np.argmax(accuracy))])


def fit_map(
    p3: np.ndarray, labels3: np.ndarray, p2: np.ndarray | None = None, positive2: np.ndarray | None = None
) -> tuple[tuple[tuple[float, float], ...], dict]:
    """The knots of the probability map, and what was found: the raw edges, their macro-F1 and
    the raw binary split."""
    low, high, score = best_edges(p3, labels3)
    eps = 1e-4
    low, high = max(low, eps), min(max(high, low + 2 * eps), 1 - eps)
    p2 = np.empty(0) if p2 is None else p2
    middle = best_split(p2, np.empty(0, bool) if positive2 is None else positive2, low, high)
    middle = min(max(middle, low + eps / 2), high - eps / 2)
    knots = ((0.0, 0.0), (low, BAND_LOW), (middle, 0.5), (high, BAND_HIGH), (1.0, 1.0))
    found = {"raw_low": round(low, 4), "raw_middle": round(middle, 4), "raw_high": round(high, 4)}
    return tuple((round(x, 6), y) for x, y in knots), {**found, "val_macro_f1": round(score, 4)}


def agreement_map(probs: np.ndarray) -> ProbabilityMap:
    """A probability map fitted without labels: the raw edges between which the band's Neutral
    agrees best with the most likely of the three classes (``probs``: negative, neutral, positive
    rows of unlabelled tweets) go to 0.4 and 0.6, and 0.5 stays 0.5 (above it, P(positive) >
    P(negative)). The map then labels as the model's own most likely class as closely as one
    positive-probability can.

    Raises:
        ValueError: when ``probs`` has no rows.
    """
    if not len(probs):
        raise ValueError("agreement_map needs at least one row of probabilities")
    p = CLASS_ORDER.positive_probability(probs)
    top = probs.argmax(1)
    eps = 1e-4
    # Agreement splits into a part that depends on the low edge alone and one on the high edge alone.
    lows = np.unique(np.concatenate([[eps], p[p < 0.5], [0.5 - eps]]))
    low_hits = [np.sum((p < t) & (top == 0)) + np.sum((p >= t) & (p <= 0.5) & (top == 1)) for t in _grid(lows)]
    highs = np.unique(np.concatenate([[0.5 + eps], p[p > 0.5], [1 - eps]]))
    high_hits = [np.sum((p > t) & (top == 2)) + np.sum((p > 0.5) & (p <= t) & (top == 1)) for t in _grid(highs)]
    low = float(np.clip(_grid(lows)[int(np.argmax(low_hits))], eps, 0.5 - eps))
    high = float(np.clip(_grid(highs)[int(np.argmax(high_hits))], 0.5 + eps, 1 - eps))
    return ProbabilityMap(((0.0, 0.0), (round(low, 6), BAND_LOW), (0.5, 0.5), (round(high, 6), BAND_HIGH), (1.0, 1.0)))


def _grid(values: np.ndarray, size: int = 400) -> np.ndarray:
    """At most ``size`` candidates spread over sorted ``values``."""
    return values if len(values) <= size else values[np.linspace(0, len(values) - 1, size).astype(int)]


def calibrate(
    model_dir: Path,
    val_texts: list[str],
    val_labels: list[int],
    binary_texts: list[str] = (),
    binary_labels: list[int] = (),
) -> dict:
    """Fit the map of ``model_dir`` on three-class rows (and binary rows, labels 1 = positive),
    store it in the directory's ``tweet_sentiment.json``, and return what was found."""
    from model_api.model.predictor import SentimentPredictor

    info = read_model_info(model_dir)
    predictor = SentimentPredictor.from_pretrained(model_dir, batch_size=128, precision="fp32")
    predictor.calibrate = ProbabilityMap()  # fit on the raw probabilities, whatever map the directory holds
    p3 = predictor.predict_proba(val_texts)
    p2 = predictor.predict_proba(list(binary_texts)) if len(binary_texts) else None
    knots, found = fit_map(p3, np.asarray(val_labels), p2, np.asarray(binary_labels) == 1)
    write_model_info(model_dir, dataclasses.replace(info, probability_map=knots))
    log.info("probability map of %s: %s (%s)", model_dir, knots, found)
    return {**found, "knots": [list(k) for k in knots]}


def calibrate_by_agreement(model_dir: Path, texts: list[str]) -> dict:
    """Fit the map of ``model_dir`` without labels (:func:`agreement_map` of its probabilities on
    ``texts``), store it, and return it with the share of ``texts`` whose served label is the
    most likely class."""
    from model_api.model.predictor import SentimentPredictor

    info = read_model_info(model_dir)
    predictor = SentimentPredictor.from_pretrained(model_dir, batch_size=128, precision="fp32")
    probs = predictor.class_proba(texts)
    mapping = agreement_map(probs)
    served = band_classes(mapping(CLASS_ORDER.positive_probability(probs)), BAND_LOW, BAND_HIGH)
    agree = float((served == probs.argmax(1)).mean())
    write_model_info(model_dir, dataclasses.replace(info, probability_map=mapping.knots))
    log.info("probability map of %s: %s (served = most likely class on %.1f%%)", model_dir, mapping.knots, 100 * agree)
    (low, _), (middle, _), (high, _) = mapping.knots[1:4]
    return {
        "method": "agreement",
        "raw_low": low,
        "raw_middle": middle,
        "raw_high": high,
        "served_is_most_likely": round(agree, 4),
        "knots": [list(k) for k in mapping.knots],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m experiments.calibration", description=__doc__.split("\n")[0])
    p.add_argument("--model", type=Path, required=True, help="model directory whose map to fit")
    p.add_argument(
        "--val", type=Path, default=None, help="three-class label,text file (default: the shared TweetEval val.csv)"
    )
    p.add_argument(
        "--binary-val", type=Path, default=None, help="Sentiment140-format file of binary rows for the 0.5 point"
    )
    p.add_argument(
        "--method",
        choices=["labels", "agreement"],
        default="labels",
        help="labels: the best band edges for macro-F1 on --val; agreement: without labels, the edges that label "
        "--val's texts as the model's most likely class",
    )
    args = p.parse_args(argv)
    setup_logging()
    val = args.val or shared_file(TWEETEVAL_VAL)
    if val is None:
        p.error("no --val file and no shared TweetEval val.csv")
    texts, labels = read_three_class(val)
    if args.method == "agreement":
        print(json.dumps(calibrate_by_agreement(args.model, texts)))
        return 0
    binary: tuple[list[str], list[int]] = ([], [])
    if args.binary_val:
        b_texts, b_labels = read_three_class(args.binary_val)
        binary = [t for t, y in zip(b_texts, b_labels, strict=True) if y != 1], [y // 2 for y in b_labels if y != 1]
    print(json.dumps(calibrate(args.model, texts, labels, *binary)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
