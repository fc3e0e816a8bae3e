"""GRU and LSTM classifiers (Keras on TensorFlow) over a 10,501-row vocabulary with hashed OOV buckets.

The embedding has 10,501 rows: the 10,000 most frequent training tokens, 500 buckets that unknown
tokens are hashed into (so an unseen token still has a learned vector), and a padding row. Two
bidirectional recurrent layers of 100 units and one of 200 feed a sigmoid output. Training stops
early on validation loss and keeps the best weights; the model is saved as ``.keras`` with its
vocabulary beside it.

Tokens are either words of the ``seed`` cleaning (the reference recipe) or WordPiece pieces of the
BERT tokenizer over ``light`` normalisation; with WordPiece the embedding can start from the BERT
model's own word-piece embeddings, reduced from 384 to 200 dimensions by PCA. :data:`RECIPES` names
the configurations the comparison can train.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import numpy as np

from experiments.data import SEED, Split
from experiments.family import FitConfig, Fitted
from sentiment.cleaning import normalise_all

RNN_MODELS = ("gru", "lstm")
TOKENIZATIONS = ("word", "wordpiece")
PAD = 0


@cache
def _wordpiece_tokenizer(name: str):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(name)


def default_wordpiece_model() -> str:
    """The packaged MiniLM checkpoint: its tokenizer and word-piece embeddings."""
    from experiments.bert_config import packaged_base_model

    return packaged_base_model()


@dataclass(frozen=True)
class Vocabulary:
    """Token to index: 1..size for known tokens, size+1..size+oov_buckets for hashed unknown ones.

    ``kind`` is ``word`` (whitespace tokens of the seed cleaning) or ``wordpiece`` (pieces of the
    tokenizer of ``wordpiece_model`` over light normalisation).
    """

    tokens: tuple[str, ...]
    oov_buckets: int = 500
    max_len: int = 40
    kind: str = "word"
    wordpiece_model: str = ""

    @classmethod
    def build(
        cls,
        texts: list[str],
        size: int = 10_000,
        oov_buckets: int = 500,
        max_len: int = 40,
        kind: str = "word",
        wordpiece_model: str = "",
    ) -> Vocabulary:
        if kind not in TOKENIZATIONS:
            raise ValueError(f"tokens must be one of {TOKENIZATIONS}, got {kind!r}")
        empty = cls((), oov_buckets, max_len, kind, wordpiece_model)
        counts = Counter(tok for toks in empty.tokenize(texts) for tok in toks)
        return replace(empty, tokens=tuple(t for t, _ in counts.most_common(size)))

    def tokenize(self, texts: list[str]) -> list[list[str]]:
        if self.kind == "word":
            return [text.split() for text in normalise_all(texts, "seed")]
        tokenizer = _wordpiece_tokenizer(self.wordpiece_model)
        ids = tokenizer(normalise_all(texts, "light"), add_special_tokens=False)["input_ids"]
        return [tokenizer.convert_ids_to_tokens(row) for row in ids]

    @property
    def rows(self) -> int:
        """Embedding rows: padding + known tokens + OOV buckets."""
        return 1 + len(self.tokens) + self.oov_buckets

    def encode(self, texts: list[str]) -> np.ndarray:
        index = {t: i + 1 for i, t in enumerate(self.tokens)}
        base = len(self.tokens) + 1
        out = np.zeros((len(texts), self.max_len), dtype=np.int32)
        for row, toks in enumerate(self.tokenize(texts)):
            ids = [index.get(tok) or base + zlib.crc32(tok.encode()) % self.oov_buckets for tok in toks]
            ids = ids[: self.max_len]
            out[row, : len(ids)] = ids
        return out

    def save(self, path: Path) -> None:
        fields = {k: getattr(self, k) for k in ("tokens", "oov_buckets", "max_len", "kind", "wordpiece_model")}
        path.write_text(json.dumps(fields))

    @classmethod
    def load(cls, path: Path) -> Vocabulary:
        d = json.loads(path.read_text())
        kind, wordpiece_model = d.get("kind", "word"), d.get("wordpiece_model", "")
        return cls(tuple(d["tokens"]), d["oov_buckets"], d["max_len"], kind, wordpiece_model)


def bert_initial_embedding(vocab: Vocabulary, dim: int, seed: int = SEED) -> np.ndarray:
    """Embedding rows for ``vocab`` taken from the BERT model's word-piece embeddings.

    The known pieces get their BERT vectors projected onto the top ``dim`` principal components
    (fitted on those rows) and scaled to a standard deviation of 0.05; padding is zero and the OOV
    buckets start small and random.
    """
    from safetensors import safe_open

    if vocab.kind != "wordpiece":
        raise ValueError("BERT-initialised embeddings need a wordpiece vocabulary")
    tokenizer = _wordpiece_tokenizer(vocab.wordpiece_model)
    weights = Path(vocab.wordpiece_model) / "model.safetensors"
    with safe_open(str(weights), "np") as f:
        key = next(k for k in f.keys() if k.endswith("word_embeddings.weight"))  # noqa: SIM118
        table = f.get_tensor(key).astype(np.float64)
    known = table[tokenizer.convert_tokens_to_ids(list(vocab.tokens))]
    centred = known - known.mean(axis=0)
    _, _, components = np.linalg.svd(centred, full_matrices=False)
    projected = centred @ components[:dim].T
    projected *= 0.05 / projected.std()
    rng = np.random.default_rng(seed)
    out = np.zeros((vocab.rows, dim), dtype=np.float32)
    out[1 : 1 + len(vocab.tokens)] = projected
    out[1 + len(vocab.tokens) :] = rng.normal(0, 0.05, (vocab.oov_buckets, dim))
    return out


@dataclass(frozen=True)
class RnnConfig:
    cell: str = "gru"
    tokens: str = "word"  # word | wordpiece
    bert_init: bool = False  # start the embedding from the BERT word-piece embeddings (wordpiece only)
    max_len: int = 40
    embedding_dim: int = 200
    units: int = 100
    top_units: int = 200
    dropout: float = 0.3
    recurrent_dropout: float = 0.0
    weight_decay: float = 0.0  # AdamW's decoupled weight decay; 0 = Adam
    lr: float = 1e-3
    batch_size: int = 256
    epochs: int = 3
    patience: int = 1
    seed: int = SEED

    def __post_init__(self) -> None:
        if self.cell not in RNN_MODELS:
            raise ValueError(f"cell must be one of {RNN_MODELS}, got {self.cell!r}")
        if self.tokens not in TOKENIZATIONS:
            raise ValueError(f"tokens must be one of {TOKENIZATIONS}, got {self.tokens!r}")
        if self.bert_init and self.tokens != "wordpiece":
            raise ValueError("bert_init needs tokens='wordpiece' (the BERT embeddings are per word piece)")


# Named training recipes for the comparison, each adding one change to the one before it.
_REGULARISED = {"dropout": 0.4, "recurrent_dropout": 0.2, "weight_decay": 1e-4}
_WORDPIECE = {**_REGULARISED, "tokens": "wordpiece", "max_len": 48}
RECIPES: dict[str, dict] = {
    "reference": {},  # the reference article's recipe: words, random embedding, dropout 0.3, Adam 1e-3
    "regularised": _REGULARISED,
    "wordpiece": _WORDPIECE,
    "bert-init": {**_WORDPIECE, "bert_init": True},
}
DEFAULT_RECIPE = "bert-init"


def recipe_config(recipe: str, **overrides) -> RnnConfig:
    """The :class:`RnnConfig` of a named recipe, with ``overrides`` (cell, epochs, seed, ...).

    Raises:
        ValueError: for an unknown recipe.
    """
    if recipe not in RECIPES:
        raise ValueError(f"unknown RNN recipe {recipe!r}; expected one of {sorted(RECIPES)}")
    return RnnConfig(**{**RECIPES[recipe], **overrides})


def build_model(vocab: Vocabulary, config: RnnConfig):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    keras.utils.set_random_seed(config.seed)
    cell = layers.GRU if config.cell == "gru" else layers.LSTM
    initializer = (
        keras.initializers.Constant(bert_initial_embedding(vocab, config.embedding_dim, config.seed))
        if config.bert_init
        else "uniform"
    )
    inputs = keras.Input(shape=(vocab.max_len,), dtype="int32")
    x = layers.Embedding(vocab.rows, config.embedding_dim, mask_zero=True, embeddings_initializer=initializer)(inputs)
    x = layers.SpatialDropout1D(config.dropout)(x)
    for _ in range(2):
        x = layers.Bidirectional(cell(config.units, return_sequences=True, recurrent_dropout=config.recurrent_dropout))(
            x
        )
    x = cell(config.top_units, recurrent_dropout=config.recurrent_dropout)(x)
    x = layers.Dropout(config.dropout)(x)
    outputs = layers.Dense(1, activation="sigmoid")(x)
    model = keras.Model(inputs, outputs, name=config.cell)
    optimizer = (
        keras.optimizers.AdamW(config.lr, weight_decay=config.weight_decay)
        if config.weight_decay
        else keras.optimizers.Adam(config.lr)
    )
    model.compile(optimizer=optimizer, loss="binary_crossentropy", metrics=["accuracy"])
    return model


def fit(train: tuple[list[str], list[int]], val: tuple[list[str], list[int]], config: RnnConfig, verbose: int = 1):
    """Train on ``train``, stop early on ``val`` loss; return ``(model, vocab, history)``."""
    import keras

    wordpiece_model = default_wordpiece_model() if config.tokens == "wordpiece" else ""
    vocab = Vocabulary.build(train[0], max_len=config.max_len, kind=config.tokens, wordpiece_model=wordpiece_model)
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


class RnnFamily:
    """The GRU or the LSTM as a family of the comparison: the named recipe of the run, or
    :data:`DEFAULT_RECIPE` for the tuned recipe and ``reference`` for the reference one."""

    def __init__(self, cell: str) -> None:
        self.name = cell

    def fit(self, split: Split, config: FitConfig) -> Fitted:
        chosen = config.rnn_recipe or (DEFAULT_RECIPE if config.recipe == "tuned" else "reference")
        rnn_config = recipe_config(chosen, cell=self.name, epochs=config.rnn_epochs, seed=config.seed)
        # Three classes: soft targets on the one sigmoid output (negative 0, neutral 0.5, positive 1).
        scale = 2 if split.classes == 3 else 1
        train = (split.texts["train"], [y / scale for y in split.labels["train"]])
        val = (split.texts["val"], [y / scale for y in split.labels["val"]])
        model, vocab, history = fit(train, val, rnn_config, verbose=2)
        notes = (
            f"recipe {chosen}; {len(history['loss'])} epoch(s); "
            f"val loss {[round(v, 4) for v in history['val_loss']]}; "
            f"val acc {[round(v, 4) for v in history['val_accuracy']]}"
        )
        return Fitted((model, vocab), notes)

    def save(self, fitted: Fitted, folder: Path) -> list[Path]:
        path = save(*fitted.model, folder, self.name)
        return [path, path.with_suffix(".vocab.json")]

    def predict(self, fitted: Fitted, texts: Sequence[str]) -> np.ndarray:
        model, vocab = fitted.model
        return predict_proba(model, vocab, list(texts))


FAMILIES = {cell: RnnFamily(cell) for cell in RNN_MODELS}
