"""The data splits: Sentiment140 (two classes) and human-labelled three-class tweets (SemEval).

Train, validation and test sets of uniformly random rows.

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
SEMEVAL_FILE = Path("semeval2017") / "train.csv"
TWEETEVAL_VAL = Path("tweeteval") / "val.csv"
# The three classes, in the order of a three-class model's outputs and of every three-class label.
CLASSES = ("negative", "neutral", "positive")
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


def shared_file(relative: Path) -> Path | None:
    """A file of the shared data folder, or None when there is no folder or no such file."""
    root = default_data_dir()
    return root / relative if root is not None and (root / relative).is_file() else None


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
    """Texts and labels per split: binary (1 = positive) or, with ``classes = 3``, indices into
    :data:`CLASSES`."""

    texts: dict[str, list[str]]
    labels: dict[str, list[int]]
    spec: SplitSpec
    classes: int = 2

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


def read_three_class(path: Path) -> tuple[list[str], list[int]]:
    """Texts and class indices of a three-class file: a ``label,text`` CSV with a header (labels
    negative/neutral/positive, as SemEval's and TweetEval's), or a Sentiment140-format file with
    polarity 0, 2 or 4 (as the corpus's ``testdata.manual.2009.06.14.csv``).

    Raises:
        ValueError: for a label that is not one of the three.
    """
    import csv

    with open(path, encoding="utf-8", newline="") as f:
        first = f.readline()
    if first.strip().lower().startswith("label,"):
        texts, labels = [], []
        with open(path, encoding="utf-8", newline="") as f:
            for n, row in enumerate(csv.DictReader(f), start=2):
                label = (row.get("label") or "").strip().lower()
                if label not in CLASSES:
                    raise ValueError(f"{path}:{n}: label {label!r} is not one of {CLASSES}")
                texts.append(row["text"])
                labels.append(CLASSES.index(label))
        return texts, labels
    rows = list(iter_rows(path))
    return [r.text for r in rows], [r.polarity // 2 for r in rows]


# The share of the three-class tweets held out by topic (:mod:`experiments.topics`).
TOPIC_FRACTION = 0.12


def load_three_class_split(path: Path, spec: SplitSpec = SplitSpec(), topic_fraction: float = TOPIC_FRACTION) -> Split:
    """A three-class file split as :func:`load_split` splits Sentiment140 (by a hash of each text),
    after the tweets of held-out topics are set apart as the part ``"topic"``: whole topics drawn
    with the split's seed until ``topic_fraction`` of the tweets (0: none), so that no training,
    validation or test tweet names one of them (:mod:`experiments.topics`)."""
    from experiments.topics import TopicSplit

    all_texts, all_labels = read_three_class(path)
    topics = TopicSplit.of(all_texts, topic_fraction, spec.seed) if topic_fraction else None
    texts: dict[str, list[str]] = {"train": [], "val": [], "test": [], "topic": []}
    labels: dict[str, list[int]] = {"train": [], "val": [], "test": [], "topic": []}
    for text, label in zip(all_texts, all_labels, strict=True):
        part = "topic" if topics is not None and topics.is_held_out(text) else spec.assign(text)
        texts[part].append(text)
        labels[part].append(label)
    return Split(texts, labels, spec, classes=3)
