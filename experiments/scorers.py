"""The rows :mod:`experiments.evaluate` scores: a model directory, the TF-IDF logistic regression
trained on the three-class training split, and blends of them (weighted means of their class
probabilities)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment.labels import ProbabilityMap

log = logging.getLogger("experiments.evaluate")

ClassProba = Callable[[Sequence[str]], np.ndarray]


@dataclass
class Scorer:
    """One row of the table: class probabilities of texts, the probability map that serves them,
    and a key naming the model's version (for the cache)."""

    name: str
    class_proba: ClassProba
    key: str
    probability_map: ProbabilityMap | None = None
    # Without a map of its own: "agreement" (fitted without labels) or "labels" (the map of
    # experiments.compare: best band edges for macro-F1 on the first set's labels).
    map_fit: str = "agreement"
    # A blend: its parts and their weights (summing to 1); its probabilities are theirs, weighed.
    parts: tuple[tuple[Scorer, float], ...] = ()


def model_scorer(folder: str, precision: str = "fp32") -> Scorer:
    """A model directory (or hub name) through the predictor, with its own probability map."""
    from model_api.model.predictor import SentimentPredictor

    predictor = SentimentPredictor.from_pretrained(folder, batch_size=128, precision=precision)
    name = Path(folder).name
    version = predictor.describe().get("version", "")
    return Scorer(name, predictor.class_proba, f"{name}-{version}-{precision}", predictor.calibrate)


def baseline_scorer(spec: str, out: Path, semeval: Path | None) -> Scorer:
    """The TF-IDF logistic regression: a saved three-class pipeline, or with ``auto`` one trained on
    the three-class training split (as :mod:`experiments.compare` trains it) and kept as
    ``out/logreg.joblib``; read as the comparison reads it (its map fitted on TweetEval val).

    Raises:
        FileNotFoundError: for ``auto`` without the shared SemEval file.
    """
    import joblib

    from experiments import linear

    path = Path(spec) if spec != "auto" else out / "logreg.joblib"
    if not path.is_file():
        if spec != "auto" or semeval is None:
            raise FileNotFoundError(f"no baseline pipeline at {path} and no SemEval file to train one on")
        from experiments.data import load_three_class_split

        split = load_three_class_split(semeval)
        log.info("training the TF-IDF logistic regression on %d three-class rows", len(split.texts["train"]))
        linear.save(linear.fit("logreg", split.texts["train"], split.labels["train"]), path)
    pipeline = joblib.load(path)
    if len(pipeline.classes_) != 3:
        raise ValueError(f"{path}: the baseline must have three classes, not {list(pipeline.classes_)}")
    key = "logreg-" + hashlib.blake2b(path.read_bytes(), digest_size=6).hexdigest()
    return Scorer("logreg", lambda texts: pipeline.predict_proba(list(texts)), key, map_fit="labels")


def blend_scorer(spec: str, known: dict[str, Scorer], precision: str = "fp32") -> Scorer:
    """A weighted mean of the class probabilities of ``A@w+B@v`` (a weight defaults to 1): each part
    is a row already in ``known`` (``logreg``, a model's name) or a model directory.

    Raises:
        ValueError: for an empty part or a weight that is not a positive number.
    """
    parts: list[tuple[Scorer, float]] = []
    for part in spec.split("+"):
        name, _, weight = part.partition("@")
        if not name:
            raise ValueError(f"--blend {spec!r}: an empty part")
        try:
            w = float(weight) if weight else 1.0
        except ValueError:
            raise ValueError(f"--blend {spec!r}: weight {weight!r} is not a number") from None
        if w <= 0:
            raise ValueError(f"--blend {spec!r}: weight {w} must be positive")
        scorer = known.get(name) or known.get(Path(name).name) or model_scorer(name, precision)
        parts.append((scorer, w))
    total = sum(w for _, w in parts)
    parts = [(s, w / total) for s, w in parts]

    def class_proba(texts):
        return sum(w * np.asarray(s.class_proba(texts)) for s, w in parts)

    name = "+".join(f"{s.name}@{w:.2f}" for s, w in parts)
    digest = hashlib.blake2b("+".join(f"{s.key}@{w:.4f}" for s, w in parts).encode(), digest_size=6).hexdigest()
    return Scorer(name, class_proba, f"blend-{digest}", parts=tuple(parts))
