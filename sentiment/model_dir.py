"""The model directory's own files: the metadata beside the checkpoint and the calibration tweets.

A model directory is a Hugging Face sequence-classification checkpoint plus ``tweet_sentiment.json``
(the model's name and version, the text preprocessing it was trained on, its maximum sequence length,
which class is positive, and the probability map fitted to the neutral band) and ``calibration.txt``
(training tweets, one per line, that calibrate an int8-static engine's activation ranges). The
training code writes them and the service reads them, both through this module. A plain Hugging
Face checkpoint has neither file; it reads with the defaults of :class:`ModelInfo`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sentiment.cleaning import get_recipe
from sentiment.labels import ClassLayout, ProbabilityMap, class_layout

METADATA_FILE = "tweet_sentiment.json"
CALIBRATION_FILE = "calibration.txt"


@dataclass(frozen=True)
class ModelInfo:
    """What the service must know about a model beyond its checkpoint.

    The defaults are those of a plain Hugging Face checkpoint without ``tweet_sentiment.json``.
    """

    name: str
    version: str = "unversioned"
    preprocessing: str = "light"
    max_length: int = 128
    positive_index: int = 1
    # Knots ``(raw, calibrated)`` of the monotone map applied to the positive-probability (empty:
    # none), fitted so that the default band's edges are this model's best (``experiments.calibration``).
    probability_map: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        get_recipe(self.preprocessing)  # raises for an unknown preprocessing recipe
        ProbabilityMap(self.probability_map)  # raises for knots that are not a monotone map


def read_model_info(path: str | Path) -> ModelInfo:
    """The metadata of a model directory; a hub name or a directory without metadata gets the
    defaults of :class:`ModelInfo`, named after the path's last part."""
    path_str = str(path)
    meta_path = Path(path_str) / METADATA_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    defaults = ModelInfo(name=Path(path_str).name or path_str)
    return ModelInfo(
        name=meta.get("name", defaults.name),
        version=meta.get("version", defaults.version),
        preprocessing=meta.get("preprocessing", defaults.preprocessing),
        max_length=int(meta.get("max_length", defaults.max_length)),
        positive_index=int(meta.get("positive_index", defaults.positive_index)),
        probability_map=tuple((float(x), float(y)) for x, y in meta.get("probability_map", ())),
    )


def write_model_info(folder: Path, info: ModelInfo) -> Path:
    """Write ``tweet_sentiment.json`` into ``folder`` (which must exist) and return its path."""
    path = folder / METADATA_FILE
    path.write_text(json.dumps(asdict(info), indent=2) + "\n")
    return path


def calibration_file(path: str | Path, fallback: Path | None = None) -> Path:
    """The calibration file of a model directory, else that of the ``fallback`` directory."""
    own = Path(str(path)) / CALIBRATION_FILE
    return own if own.is_file() or fallback is None else fallback / CALIBRATION_FILE


def read_calibration_texts(path: str | Path, fallback: Path | None = None) -> list[str]:
    """The calibration tweets of a model directory, else those of the ``fallback`` directory.

    Raises:
        FileNotFoundError: when neither directory has a calibration file.
    """
    source = calibration_file(path, fallback)
    return [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_calibration_texts(folder: Path, texts: Sequence[str], seed: int, count: int = 512) -> Path:
    """Store ``count`` texts drawn at random from ``texts`` (training rows) for calibration."""
    chosen = random.Random(seed).sample(list(texts), min(count, len(texts)))
    path = folder / CALIBRATION_FILE
    path.write_text("".join(" ".join(t.split()) + "\n" for t in chosen), encoding="utf-8")
    return path


def read_class_layout(path: str | Path) -> ClassLayout | None:
    """The classes of a model directory, read from its ``config.json`` and metadata without
    loading the model; None for a hub name or a directory without ``config.json``.

    Raises:
        ValueError: when the classes cannot be read (:func:`sentiment.labels.class_layout`) or the
            metadata is invalid.
    """
    config_path = Path(str(path)) / "config.json"
    if not config_path.is_file():
        return None
    config = json.loads(config_path.read_text())
    id2label = config.get("id2label") or {i: f"LABEL_{i}" for i in range(int(config.get("num_labels", 2)))}
    return class_layout(id2label, read_model_info(path).positive_index)
