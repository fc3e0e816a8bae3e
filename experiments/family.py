"""What every model family of the comparison offers: fit on a split, save, predict; and the registry.

A family is an object with a ``name`` and three methods (:class:`Family`). The comparison knows
families only through :func:`get_family`, which imports a family's module on first use, so that
TensorFlow and torch load only when a GRU, LSTM or BERT row is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from experiments.data import Split

# Each family's name and the module that defines it in its ``FAMILIES`` dict, in the comparison's order.
_MODULES = {
    "logreg": "experiments.linear",
    "linear_svc": "experiments.linear",
    "multinomial_nb": "experiments.linear",
    "gru": "experiments.rnn",
    "lstm": "experiments.rnn",
    "bert": "experiments.bert",
}
ALL_MODELS = tuple(_MODULES)


@dataclass(frozen=True)
class FitConfig:
    """Settings of one comparison run, the same for every family; each reads what it needs.

    Args:
        seed: the seed of every random choice.
        recipe: ``tuned`` (ours) or ``reference`` (the reference article's recipes).
        rnn_recipe: one of :data:`experiments.rnn.RECIPES` for the GRU and LSTM (default: per ``recipe``).
        rnn_epochs: most epochs of the GRU and LSTM.
        bert_epochs: epochs of the BERT fine-tune.
        bert_max_train_rows: rows the BERT fine-tune samples from the training split (None: all).
        bert_model: a model directory trained earlier, evaluated instead of training the BERT row.
        work_dir: where a family may write while it trains (the BERT learning curve).
    """

    seed: int
    recipe: str = "tuned"
    rnn_recipe: str | None = None
    rnn_epochs: int = 3
    bert_epochs: float = 1.0
    bert_max_train_rows: int | None = None
    bert_model: Path | None = None
    work_dir: Path | None = None


@dataclass
class Fitted:
    """A trained model of some family, what to say about its training, and, for a model trained
    earlier, the training time it recorded then (else the comparison times the fit)."""

    model: Any
    notes: str = ""
    recorded_train_seconds: float | None = None


class Family(Protocol):
    """One model family of the comparison."""

    name: str

    def fit(self, split: Split, config: FitConfig) -> Fitted:
        """Train on the split's ``train`` part; its ``val`` part may drive early stopping or model
        selection; its ``test`` part is the comparison's alone."""
        ...

    def save(self, fitted: Fitted, folder: Path) -> list[Path]:
        """Write the model's files under ``folder``; return the files and folders it consists of."""
        ...

    def predict(self, fitted: Fitted, texts: Sequence[str]) -> np.ndarray:
        """The positive-probability of each text. Call after :meth:`save`: some families score
        through the saved files, as the service does."""
        ...


def get_family(name: str) -> Family:
    """The family called ``name``.

    Raises:
        ValueError: for an unknown name.
    """
    if name not in _MODULES:
        raise ValueError(f"unknown model {name!r}; expected one of {ALL_MODELS}")
    return importlib.import_module(_MODULES[name]).FAMILIES[name]
