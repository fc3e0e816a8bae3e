"""Sentiment labels and the neutral band that maps a positive-probability to one of them."""

from __future__ import annotations

from dataclasses import dataclass

NEGATIVE = "Negative"
NEUTRAL = "Neutral"
POSITIVE = "Positive"
LABELS: tuple[str, str, str] = (NEGATIVE, NEUTRAL, POSITIVE)
# The neutral band's default edges (``[band]`` of conf/pipeline.toml sets the ones in use).
BAND_LOW = 0.4
BAND_HIGH = 0.6


@dataclass(frozen=True)
class NeutralBand:
    """Probabilities in ``[low, high]`` (both ends inclusive) are Neutral.

    ``p < low`` is Negative and ``p > high`` is Positive. ``low == high`` leaves a single neutral
    point; ``low=0, high=1`` makes everything Neutral.
    """

    low: float = BAND_LOW
    high: float = BAND_HIGH

    def __post_init__(self) -> None:
        if not (0.0 <= self.low <= self.high <= 1.0):
            raise ValueError(f"neutral band must satisfy 0 <= low <= high <= 1, got low={self.low}, high={self.high}")

    def label(self, p_positive: float) -> str:
        """Return the label for one positive-probability."""
        if p_positive < self.low:
            return NEGATIVE
        if p_positive > self.high:
            return POSITIVE
        return NEUTRAL

    def to_dict(self) -> dict[str, float]:
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class Prediction:
    """One text's label. Defined here, away from the model code, so that a process that only
    receives predictions (the service's HTTP worker) unpickles them without importing torch."""

    sentiment: str
    p_positive: float
    confidence: float
    # A three-class model's (negative, neutral, positive) probabilities; None for a two-class one.
    probabilities: tuple[float, float, float] | None = None

    def to_dict(self) -> dict:
        out: dict = {"sentiment": self.sentiment, "p_positive": self.p_positive, "confidence": self.confidence}
        if self.probabilities is not None:
            out["probabilities"] = dict(zip(("negative", "neutral", "positive"), self.probabilities, strict=True))
        return out


def confidence(p_positive: float) -> float:
    """Probability of the more likely of the two classes, in ``[0.5, 1]``."""
    return max(p_positive, 1.0 - p_positive)


# The class names a checkpoint's ``id2label`` may use for each of the three classes (any case).
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "negative": ("negative", "neg"),
    "neutral": ("neutral", "neu"),
    "positive": ("positive", "pos"),
}


@dataclass(frozen=True)
class ClassLayout:
    """Where a checkpoint keeps each class in its output.

    A two-class model has ``neutral = None``; a three-class one has all three. The positive-
    probability of a three-class model is ``P(positive) + P(neutral) / 2``: a neutral tweet lands
    in the middle of the band, a clear one at its end.
    """

    negative: int
    positive: int
    neutral: int | None = None

    @property
    def three_class(self) -> bool:
        return self.neutral is not None

    def positive_probability(self, probs):
        """The positive-probability of each row of class probabilities (a NumPy array ``(n, k)``)."""
        p = probs[:, self.positive]
        return p + probs[:, self.neutral] / 2 if self.neutral is not None else p

    def three_probabilities(self, probs):
        """Rows of ``(negative, neutral, positive)`` probabilities; None for a two-class model."""
        if self.neutral is None:
            return None
        return probs[:, [self.negative, self.neutral, self.positive]]


def class_layout(id2label: dict[int, str], positive_index: int = 1) -> ClassLayout:
    """Read a checkpoint's classes from its ``id2label``.

    Two classes: ``positive_index`` is the positive one (a checkpoint's generic ``LABEL_0`` /
    ``LABEL_1`` names say nothing). Three classes: each must be named negative, neutral or
    positive (or neg/neu/pos, any case), as the common Twitter sentiment checkpoints are.

    Raises:
        ValueError: for three classes whose names do not map, or any other number of classes.
    """
    labels = {int(i): str(name) for i, name in id2label.items()}
    if len(labels) == 2:
        if positive_index not in labels:
            raise ValueError(f"positive_index {positive_index} is not one of the model's classes {sorted(labels)}")
        return ClassLayout(negative=1 - positive_index, positive=positive_index)
    if len(labels) == 3:
        found: dict[str, int] = {}
        for index, name in labels.items():
            for cls, aliases in CLASS_NAMES.items():
                if name.strip().lower() in aliases:
                    found[cls] = index
        if len(found) == 3:
            return ClassLayout(found["negative"], found["positive"], found["neutral"])
        raise ValueError(
            f"cannot read the model's three classes {labels}: name them negative, neutral and positive "
            "in its config.json (id2label)"
        )
    raise ValueError(f"the model has {len(labels)} classes {labels}: a sentiment model needs two or three")


@dataclass(frozen=True)
class ProbabilityMap:
    """A monotone, piecewise-linear map of a model's positive-probability, fitted so that the
    default band's edges (0.4 and 0.6) are the best edges for that model (see
    ``experiments.calibration``). No knots: the identity."""

    knots: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        xs = [x for x, _ in self.knots]
        ys = [y for _, y in self.knots]
        if self.knots and (
            len(self.knots) < 2
            or any(b <= a for a, b in zip(xs, xs[1:], strict=False))
            or any(b < a for a, b in zip(ys, ys[1:], strict=False))
            or not all(0.0 <= v <= 1.0 for v in xs + ys)
        ):
            raise ValueError(f"a probability map needs two or more increasing knots within [0, 1], got {self.knots}")

    def __call__(self, p):
        import numpy as np

        if not self.knots:
            return p
        xs, ys = zip(*self.knots, strict=True)
        return np.interp(p, xs, ys)
