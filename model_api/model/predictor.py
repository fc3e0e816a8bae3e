"""The sentiment predictor: the one place that knows the model, its tokenizer and preprocessing.

A model directory written by ``experiments.train_bert`` holds a Hugging Face sequence
classification checkpoint plus ``tweet_sentiment.json``, which records the text preprocessing the
model was trained on, its maximum sequence length and version. Any other Hugging Face checkpoint
directory or hub name also loads, with light preprocessing and the label order of its config.

Usage::

    predictor = SentimentPredictor.from_pretrained("models/default")  # or a hub name
    predictor.predict(["what a lovely day"])  # [Prediction(label='Positive', p_positive=..., ...)]

The model tokenises, runs the forward passes on its engine and turns logits into calibrated
probabilities and labels; which engine that is (eager, compiled, cached, switched while serving) is
:mod:`model_api.model.engine_setup`'s business: :meth:`SentimentPredictor.from_pretrained` picks one by
what the CPU has unless told (``precision=``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from model_api.model.engine_cache import EngineCache, cache_dir
from model_api.model.engine_setup import prepare_engine
from model_api.model.engines import auto_precision, can_pack, takes_packed_rows
from model_api.model.locations import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, FULL_MODEL_DIR, model_location
from model_api.model.packing import pack_rows, packed_arrays, padded_arrays
from sentiment.cleaning import normalise_all
from sentiment.config import Config
from sentiment.labels import NeutralBand, Prediction, ProbabilityMap, class_layout, confidence
from sentiment.model_dir import ModelInfo, read_calibration_texts, read_model_info

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "FAST_MODEL_DIR",
    "FULL_MODEL_DIR",
    "SentimentPredictor",
    "model_location",
]

# One forward pass costs about as much as this many padded tokens on top of its rows x width
# (the overhead that cut random batches fastest: docs/performance.md, "Batches into passes").
PASS_OVERHEAD_TOKENS = 128


def split_by_length(lengths: Sequence[int], max_rows: int, overhead: float = PASS_OVERHEAD_TOKENS) -> list[int]:
    """Where to cut texts sorted by token count into forward passes, to compute the fewest tokens.

    A pass over rows ``i..j-1`` costs ``overhead + (j - i) * lengths[j - 1]`` (every row padded
    to the longest); dynamic programming finds the cuts of least total cost with at most
    ``max_rows`` rows per pass. Returns the end index of each pass.

    Raises:
        ValueError: if ``lengths`` is not sorted or ``max_rows`` < 1.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows}")
    n = len(lengths)
    widths = np.asarray(lengths, dtype=np.float64)
    if n and np.any(np.diff(widths) < 0):
        raise ValueError("lengths must be sorted in ascending order")
    best = np.zeros(n + 1)
    start = np.zeros(n + 1, dtype=np.int64)
    for j in range(1, n + 1):
        lo = max(0, j - max_rows)
        cost = best[lo:j] + overhead + (j - np.arange(lo, j)) * widths[j - 1]
        k = int(np.argmin(cost))
        best[j], start[j] = cost[k], lo + k
    ends, j = [], n
    while j > 0:
        ends.append(j)
        j = int(start[j])
    return ends[::-1]


class Engine(Protocol):
    """What the model runs its forward passes on (:class:`model_api.model.engine_setup.ServedEngine`)."""

    def logits(self, *arrays: np.ndarray) -> np.ndarray: ...

    def describe(self) -> dict:
        """``precision``, ``engine`` (the one serving now) and ``engine_state``."""
        ...


class SentimentPredictor:
    """Scores texts with a sequence-classification model and maps them to labels.

    :meth:`from_pretrained` loads one ready to predict; it runs its forward passes on ``engine``,
    which :mod:`model_api.model.engine_setup` prepares for it (eager, compiled, cached) and may switch
    while it serves.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        info: ModelInfo,
        band: NeutralBand = NeutralBand(),
        batch_size: int = 64,
        pack: bool = True,
        engine: Engine | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.info = info
        # Which output is which class (raises for a checkpoint whose classes cannot be read), and
        # the map that puts this model's best band edges at the band's defaults.
        self.layout = class_layout(model.config.id2label, info.positive_index)
        self.calibrate = ProbabilityMap(info.probability_map)
        self.band = band
        self.batch_size = batch_size
        # Several texts per row (model_api.model.packing) where the model allows it (and the engine:
        # model_api.model.engine_setup passes ``pack`` false for one that takes padded rows only).
        self.packed = pack and can_pack(self.model)
        # Unpacked: how sorted token counts are cut into forward passes: ``(lengths, max_rows) -> end indices``.
        self.split_passes: Callable[[Sequence[int], int], list[int]] = split_by_length
        # Held during each forward pass: one at a time per process (concurrent passes would only
        # fight for the cores), and the engine is switched between two.
        self.passing = threading.Lock()
        self.engine = engine

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path = DEFAULT_MODEL_DIR,
        precision: str = "auto",
        band: NeutralBand = NeutralBand(),
        batch_size: int = 64,
        pack: bool = True,
        engine_cache: str | None = None,
        fast_start: bool = False,
        start_precision: str = "int8",
    ) -> SentimentPredictor:
        """A predictor of a model directory or Hugging Face hub name, with its engine prepared and
        started: ready to :meth:`predict`.

        ``precision`` picks the engine (see :mod:`model_api.model.engines`): ``auto`` (the default) the
        fastest one ready at once on this CPU (:func:`~model_api.model.engines.auto_precision`); ``fp32``,
        ``bf16``, ``int8`` (eager torch); ``int8-static`` or ``int8-dynamic`` (PT2E int8 compiled by
        Inductor on first use); ``onnx`` or ``onnx-int8`` (ONNX Runtime; exported and cached on
        first use). ``pack``: several texts in each row of a forward pass where the model is a BERT
        classifier and the engine a torch one (:mod:`model_api.model.packing`). ``engine_cache``: a
        folder where compiled int8 engines are kept (:mod:`model_api.model.engine_cache`); None compiles
        them in this process at every start. ``fast_start``: a compiled engine not at hand is built
        in the background while ``start_precision`` (an eager torch engine) serves; then the model
        switches.

        Raises:
            OSError: if the checkpoint cannot be found or read.
        """
        precision = auto_precision() if precision == "auto" else precision
        model = cls.read_checkpoint(path, band, batch_size, pack=pack and takes_packed_rows(precision))
        cache = EngineCache(engine_cache) if engine_cache is not None else None
        prepare_engine(model, precision, str(path), cache, fast_start, start_precision).start()
        return model

    @classmethod
    def from_config(cls, config: Config) -> SentimentPredictor:
        """The model the service configuration names (model, neutral band, batch size, engine)."""
        service = config.service
        return cls.from_pretrained(
            model_location(config),
            precision=service.precision,
            band=config.band.band(),
            batch_size=service.inference_batch,
            pack=service.pack_texts,
            engine_cache=str(cache_dir(service.engine_cache)) if service.engine_cache else None,
            fast_start=service.fast_start,
            start_precision=service.start_precision,
        )

    @classmethod
    def read_checkpoint(
        cls,
        path: str | Path = DEFAULT_MODEL_DIR,
        band: NeutralBand = NeutralBand(),
        batch_size: int = 64,
        pack: bool = True,
    ) -> SentimentPredictor:
        """Read a model directory or Hugging Face hub name, without an engine (what
        :meth:`from_pretrained` gives it: :func:`model_api.model.engine_setup.prepare_engine`).

        Raises:
            OSError: if the checkpoint cannot be found or read.
        """
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        path = str(path)
        info = read_model_info(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        # Eager attention: on tweet-length sequences it is faster than SDPA's CPU kernel, and it
        # is what the compiled engines capture.
        model = AutoModelForSequenceClassification.from_pretrained(
            path, dtype=torch.float32, attn_implementation="eager"
        )
        log.info("loaded model %s (version %s, preprocessing %s)", info.name, info.version, info.preprocessing)
        return cls(model, tokenizer, info, band=band, batch_size=batch_size, pack=pack)

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        """Apply the preprocessing the model was trained on."""
        return normalise_all(texts, self.info.preprocessing)

    def passes(self, texts: Sequence[str]) -> Iterator[tuple[list[int], tuple[np.ndarray, ...]]]:
        """``(indices, arrays)`` of each forward pass over ``texts``, preprocessed (see :meth:`_batches`)."""
        return self._batches(self.preprocess(texts))

    def _batches(self, prepared: list[str]):
        """Yield ``(indices, arrays)``, one forward pass each; ``indices`` put results back in order.

        Texts are tokenized once. Packed (``self.packed``): texts are packed into rows of
        ``max_length`` tokens, ``batch_size`` rows per pass, and ``arrays`` are
        :func:`model_api.model.packing.packed_arrays`. Otherwise ``arrays`` are ``(input_ids,
        attention_mask)``: texts sorted by their number of tokens, cut into passes of at most
        ``batch_size`` rows where padding would cost more than another pass (``split_passes``, by
        default :func:`split_by_length`), and padded per pass only to the longest in it.
        """
        pad = self.tokenizer.pad_token_id or 0
        ids = self.tokenizer(prepared, truncation=True, max_length=self.info.max_length, return_attention_mask=False)[
            "input_ids"
        ]
        if self.packed:
            rows = pack_rows([len(x) for x in ids], self.info.max_length)
            for start in range(0, len(rows), self.batch_size):
                yield packed_arrays(ids, rows[start : start + self.batch_size], pad)
            return
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        start = 0
        for end in self.split_passes([len(ids[i]) for i in order], self.batch_size):
            idx, start = order[start:end], end
            yield idx, padded_arrays([ids[i] for i in idx], pad)

    def _class_passes(self, texts: Sequence[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """``(indices, class probabilities)`` of each forward pass, as it ends (the model's order)."""
        if self.engine is None:
            raise RuntimeError("the model has no engine: load it with SentimentPredictor.from_pretrained")
        for idx, arrays in self.passes(texts):
            with self.passing:
                logits = self.engine.logits(*arrays)
            z = np.exp(logits - logits.max(axis=1, keepdims=True))
            yield idx, z / z.sum(axis=1, keepdims=True)

    def _proba_passes(self, texts: Sequence[str]) -> Iterator[tuple[list[int], np.ndarray, np.ndarray | None]]:
        """``(indices, positive-probabilities, three-class probabilities or None)`` of each pass."""
        for idx, probs in self._class_passes(texts):
            p = self.calibrate(self.layout.positive_probability(probs))
            yield idx, p, self.layout.three_probabilities(probs)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Positive-probability of each text (calibrated, as served), in input order.

        Texts longer than the model's maximum length are truncated.
        """
        out = np.empty(len(texts), dtype=np.float64)
        for idx, probs, _ in self._proba_passes(texts):
            out[idx] = probs
        return out

    def class_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Rows of (negative, neutral, positive) probabilities, uncalibrated, in input order; a
        two-class model's neutral column is 0."""
        out = np.zeros((len(texts), 3), dtype=np.float64)
        layout = self.layout
        for idx, probs in self._class_passes(texts):
            out[idx, 0], out[idx, 2] = probs[:, layout.negative], probs[:, layout.positive]
            if layout.neutral is not None:
                out[idx, 1] = probs[:, layout.neutral]
        return out

    def warm_up(self) -> None:
        """Run the shapes the service will see (one text, a few, a full batch) before serving, so
        that no request pays for a first pass or, with a compiled engine, for compiling."""
        texts = read_calibration_texts(DEFAULT_MODEL_DIR)
        for n in (1, 2, min(self.batch_size, len(texts))):
            self.predict_proba(texts[:n])

    def _labelled(self, p: float, three: np.ndarray | None = None) -> Prediction:
        # Round first, so that the band applied to the reported probability gives the same label.
        p = round(p, 6)
        probabilities = None if three is None else tuple(round(float(x), 6) for x in three)
        return Prediction(self.band.label(p), p, confidence(p), probabilities)

    def predict_passes(self, texts: Sequence[str]) -> Iterator[tuple[list[int], list[Prediction]]]:
        """Label the texts pass by pass: ``(indices into texts, predictions)`` as each forward pass
        ends, so that a caller can answer the texts of early passes before the batch is done."""
        for idx, probs, three in self._proba_passes(texts):
            if three is None:
                yield idx, [self._labelled(float(p)) for p in probs]
            else:
                yield idx, [self._labelled(float(p), t) for p, t in zip(probs, three, strict=True)]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label each text with the neutral band."""
        out: list[Prediction] = [None] * len(texts)  # type: ignore[list-item]
        for idx, predictions in self.predict_passes(texts):
            for i, prediction in zip(idx, predictions, strict=True):
                out[i] = prediction
        return out

    def health(self) -> dict:
        """Loaded in this process: always ready."""
        return {"status": "ok"}

    def describe(self) -> dict:
        """What ``GET /model`` reports."""
        return {
            "name": self.info.name,
            "version": self.info.version,
            "preprocessing": self.info.preprocessing,
            "max_length": self.info.max_length,
            "classes": ["negative", "neutral", "positive"] if self.layout.three_class else ["negative", "positive"],
            "calibrated": bool(self.info.probability_map),
            **self.engine.describe(),  # precision, engine, engine_state
            "neutral_band": {**self.band.to_dict(), "inclusive": True},
        }
