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

    def to_dict(self) -> dict[str, float | str]:
        return {"sentiment": self.sentiment, "p_positive": self.p_positive, "confidence": self.confidence}


def confidence(p_positive: float) -> float:
    """Probability of the more likely of the two classes, in ``[0.5, 1]``."""
    return max(p_positive, 1.0 - p_positive)
