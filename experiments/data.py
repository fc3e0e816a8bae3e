"""The shared Sentiment140 split: train, validation and test sets of uniformly random rows.

A row's split is decided by a hash of its text and the seed, so the split does not depend on the
order or the combination of files, and repeated texts (some with both labels) never straddle
two splits.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from sentiment.sentiment140 import iter_rows

DATA_ENV = "TWEETSENT_DATA"
SENTIMENT140_FILES = ("train_full_rows.csv", "train_text_only.csv")
# The seed of the split and of every model's random choices, unless a run names another.
SEED = 13


def default_data_dir() -> Path | None:
    """The shared data folder: ``$TWEETSENT_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    candidate = Path(__file__).resolve().parents[2] / "shared" / "data"
    return candidate if candidate.is_dir() else None


def default_training_files() -> list[Path]:
    """The Sentiment140 files of the shared data folder.

    Raises:
        FileNotFoundError: when no data folder is found.
    """
    root = default_data_dir()
    if root is None:
        raise FileNotFoundError(f"no training data: set {DATA_ENV} to the shared data folder or pass --data FILE")
    return [root / "sentiment140" / name for name in SENTIMENT140_FILES]


@dataclass(frozen=True)
class SplitSpec:
    """Fractions of rows held out for validation and test, and the seed of the hash."""

    val_fraction: float = 0.04
    test_fraction: float = 0.08
    seed: int = SEED

    def __post_init__(self) -> None:
        if not (self.val_fraction > 0 and self.test_fraction > 0 and self.val_fraction + self.test_fraction < 1):
            raise ValueError(f"bad split fractions: {self}")

    def assign(self, text: str) -> str:
        """Return ``"train"``, ``"val"`` or ``"test"`` for one text."""
        digest = hashlib.blake2b(f"{self.seed}\x00{text}".encode(), digest_size=8).digest()
        u = int.from_bytes(digest, "big") / 2**64
        if u < self.test_fraction:
            return "test"
        if u < self.test_fraction + self.val_fraction:
            return "val"
        return "train"


@dataclass
class Split:
    """Texts and binary labels (1 = positive) per split."""

    texts: dict[str, list[str]]
    labels: dict[str, list[int]]
    spec: SplitSpec

    def sizes(self) -> dict[str, int]:
        return {name: len(v) for name, v in self.texts.items()}

    def describe(self) -> dict:
        return {"spec": asdict(self.spec), "sizes": self.sizes()}


def load_split(files: list[Path], spec: SplitSpec = SplitSpec()) -> Split:
    """Read binary-labelled Sentiment140 files (polarity 0 or 4) and split them.

    Neutral rows (polarity 2) are skipped: training is binary.
    """
    texts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for path in files:
        for row in iter_rows(path):
            if row.polarity == 2:
                continue
            part = spec.assign(row.text)
            texts[part].append(row.text)
            labels[part].append(1 if row.polarity == 4 else 0)
    return Split(texts, labels, spec)
