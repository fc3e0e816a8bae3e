"""Where the served model is: the bundled model directories and the ``service.model`` setting.

Kept apart from the predictor so that the service's main process can check the model before
starting its workers without importing torch.
"""

from __future__ import annotations

from pathlib import Path

from sentiment.config import Config
from sentiment.labels import ClassLayout
from sentiment.model_dir import read_class_layout

# The two bundled models (their README.md; figures in docs/experiments.md and docs/performance.md):
# 6 layers, whose labels hold up best on tweets unlike its training data, and 3 layers cut from it
# and distilled again, twice the tweets per core for about 0.03 of out-of-domain macro-F1.
MODELS_DIR = Path(__file__).resolve().parents[2] / "models"  # weights, apart from the code
FULL_MODEL_DIR = MODELS_DIR / "default"
FAST_MODEL_DIR = MODELS_DIR / "fast"
# What an empty ``service.model`` loads: the 6-layer one, chosen by the out-of-domain figures
# (docs/experiments.md, "Labels that hold up"); models/fast is the one that meets the
# serving goals on two cores (docs/serving.md).
DEFAULT_MODEL_DIR = FULL_MODEL_DIR


def model_location(config: Config) -> str:
    """Where ``service.model`` points: the bundled model when empty; a directory relative to the
    working directory or, failing that, to the project root; else a Hugging Face hub name."""
    name = config.service.model
    if not name:
        return str(DEFAULT_MODEL_DIR)
    for candidate in (Path(name), config.resolve(name)):
        if candidate.is_dir():
            return str(candidate)
    return name


def check_model(config: Config) -> ClassLayout | None:
    """Read the classes and metadata of the configured model directory, so that a model the
    service cannot serve is an error before any worker starts (None: a hub name, read later).

    Raises:
        ValueError: when the model's classes cannot be read or its metadata is invalid.
    """
    return read_class_layout(model_location(config))
