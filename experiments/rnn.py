"""GRU and LSTM classifiers (Keras on TensorFlow) over a word vocabulary with hashed OOV buckets.

The embedding has 10,501 rows: the 10,000 most frequent training tokens, 500 buckets that unknown
tokens are hashed into (so an unseen word still has a learned vector), and a padding row. Two
bidirectional recurrent layers of 100 units and one of 200 feed a sigmoid output. Training stops
early on validation loss and keeps the best weights; the model is saved as ``.keras`` with its
vocabulary beside it.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentiment.cleaning import normalise_all

RNN_MODELS = ("gru", "lstm")
PAD = 0


@dataclass(frozen=True)
class Vocabulary:
    """Token to index: 1..size for known tokens, size+1..size+oov_buckets for hashed unknown ones."""

    tokens: tuple[str, ...]
    oov_buckets: int = 500
    max_len: int = 40

    @classmethod
    def build(cls, texts: list[str], size: int = 10_000, oov_buckets: int = 500, max_len: int = 40) -> Vocabulary:
        counts = Counter(tok for text in normalise_all(texts, "seed") for tok in text.split())
        return cls(tuple(t for t, _ in counts.most_common(size)), oov_buckets, max_len)

    @property
    def rows(self) -> int:
        """Embedding rows: padding + known tokens + OOV buckets."""
        return 1 + len(self.tokens) + self.oov_buckets

    def encode(self, texts: list[str]) -> np.ndarray:
        index = {t: i + 1 for i, t in enumerate(self.tokens)}
        base = len(self.tokens) + 1
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        for row, text in enumerate(normalise_all(texts, "seed")):
            ids = [index.get(tok) or base + zlib.crc32(tok.encode()) % self.oov_buckets for tok in text.split()]
            ids = ids[: self.max_len]
            out[row, : len(ids)] = ids
        return out

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"tokens": self.tokens, "oov_buckets": self.oov_buckets, "max_len": self.max_len}))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        d = json.loads(path.read_text())
        return cls(tuple(d["tokens"]), d["oov_buckets"], d["max_len"])


@dataclass(frozen=True)
class RnnConfig:
    cell: str = "gru"
    embedding_dim: int = 200
    units: int = 100
    top_units: int = 200
    dropout: float = 0.3
    recurrent_dropout: float = 0.0
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 3
    patience: int = 1
    seed: int = 13

    def __post_init__(self) -> None:
        if self.cell not in RNN_MODELS:
            raise ValueError(f"cell must be one of {RNN_MODELS}, got {self.cell!r}")


def build_model(vocab: Vocabulary, config: RnnConfig):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    keras.utils.set_random_seed(config.seed)
    cell = layers.GRU if config.cell == "gru" else layers.LSTM
    inputs = keras.Input(shape=(vocab.max_len,), dtype="int32")
    x = layers.Embedding(vocab.rows, config.embedding_dim, mask_zero=True)(inputs)
    x = layers.SpatialDropout1D(config.dropout)(x)
    for _ in range(2):
        x = layers.Bidirectional(cell(config.units, return_sequences=True, recurrent_dropout=config.recurrent_dropout))(
            x
        )
    x = cell(config.top_units)(x)
    x = layers.Dropout(config.dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=config.cell)
    model.compile(optimizer=keras.optimizers.Adam(config.lr), loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit(train: tuple[list[str], list[int]], val: tuple[list[str], list[int]], config: RnnConfig, verbose: int = 1):
    """Train on ``train``, stop early on ``val`` loss; return ``(model, vocab, history)``."""
    import keras

    vocab = Vocabulary.build(train[0])
    model = build_model(vocab, config)
    history = model.fit(
        vocab.encode(train[0]),
        np.asarray(train[1], dtype=np.float32),
        validation_data=(vocab.encode(val[0]), np.asarray(val[1], dtype=np.float32)),
        epochs=config.epochs,
        batch_size=config.batch_size,
        verbose=verbose,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience, restore_best_weights=True)
        ],
    )
    return model, vocab, history.history


def predict_proba(model, vocab: Vocabulary, texts: list[str], batch_size: int = 1024) -> np.ndarray:
    return model.predict(vocab.encode(texts), batch_size=batch_size, verbose=0).reshape(-1)


def save(model, vocab: Vocabulary, folder: Path, name: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.keras"
    model.save(path)
    vocab.save(folder / f"{name}.vocab.json")
    return path
