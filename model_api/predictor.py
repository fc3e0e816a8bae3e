"""The sentiment predictor: the one place that knows the model, its tokenizer and preprocessing.

A model directory written by ``experiments.train_bert`` holds a Hugging Face sequence
classification checkpoint plus ``tweet_sentiment.json``, which records the text preprocessing the
model was trained on, its maximum sequence length and version. Any other Hugging Face checkpoint
directory or hub name also loads, with light preprocessing and the label order of its config.
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from model_api.engine_cache import (
    EngineCache,
    EngineKey,
    PackagedEngine,
    build_command,
    build_in_background,
    cache_dir,
    compile_package,
    model_digest,
)
from model_api.engines import bf16_supported, make_engine, takes_packed_rows
from model_api.locations import DEFAULT_MODEL_DIR, FAST_MODEL_DIR, FULL_MODEL_DIR, model_location
from model_api.packing import can_pack, pack_rows, packed_arrays, padded_arrays
from sentiment.cleaning import normalise_all
from sentiment.config import COMPILED_PRECISIONS, Config
from sentiment.labels import NeutralBand, Prediction, ProbabilityMap, class_layout, confidence
from sentiment.model_dir import ModelInfo, calibration_file, read_calibration_texts, read_model_info

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_MODEL_DIR",
    "FAST_MODEL_DIR",
    "FULL_MODEL_DIR",
    "SentimentPredictor",
    "load_predictor",
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


def load_predictor(config: Config) -> SentimentPredictor:
    """The predictor the service configuration names (model, neutral band, batch size, engine)."""
    service = config.service
    return SentimentPredictor.from_pretrained(
        model_location(config),
        band=config.band.band(),
        batch_size=service.inference_batch,
        precision=service.precision,
        pack=service.pack_texts,
        engine_cache=str(cache_dir(service.engine_cache)) if service.engine_cache else None,
        fast_start=service.fast_start,
        start_precision=service.start_precision,
    )


BACKGROUND_NICENESS = 10


def background_priority() -> None:
    """Lower the calling thread's CPU priority (Linux: niceness is per thread) to
    :data:`BACKGROUND_NICENESS` (a thread already nicer keeps its own). The threads it starts
    from now on (torch's OpenMP team of this thread, Inductor's compiler processes) inherit it;
    the process's other threads keep theirs."""
    try:
        thread = threading.get_native_id()
        if os.getpriority(os.PRIO_PROCESS, thread) < BACKGROUND_NICENESS:
            os.setpriority(os.PRIO_PROCESS, thread, BACKGROUND_NICENESS)
    except (AttributeError, OSError) as e:  # not Linux, or not allowed: compile at normal priority
        log.debug("could not lower the compile thread's priority: %s", e)


class SentimentPredictor:
    """Scores texts with a sequence-classification model and maps them to labels."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        info: ModelInfo,
        band: NeutralBand = NeutralBand(),
        batch_size: int = 64,
        precision: str = "fp32",
        model_path: str | None = None,
        pack: bool = True,
        engine_cache: str | None = None,
        fast_start: bool = False,
        start_precision: str = "int8",
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
        self.precision = precision
        # Several texts per row (model_api.packing) where the model and the engine allow it.
        self.packed = pack and can_pack(self.model) and takes_packed_rows(precision)
        # Unpacked: how sorted token counts are cut into forward passes: ``(lengths, max_rows) -> end indices``.
        self.split_passes: Callable[[Sequence[int], int], list[int]] = split_by_length
        # One forward pass at a time per process: concurrent passes would only fight for the cores.
        self._lock = threading.Lock()
        self.engine_name = precision  # the engine serving now
        self.engine_state = "ready"  # or "building <precision>", or why the compiled engine is missing
        # Called (from a background thread) when the serving engine changes.
        self.on_engine_change: Callable[[], None] | None = None
        model_path = model_path or str(DEFAULT_MODEL_DIR)
        if precision in COMPILED_PRECISIONS and engine_cache is not None:
            self.engine = self._cached_engine(model_path, EngineCache(engine_cache), fast_start, start_precision)
            return
        if precision in COMPILED_PRECISIONS and fast_start:
            self.engine = self._start_engine(model_path, start_precision, f"compiling {precision}")
            threading.Thread(
                target=self._compile_then_switch, args=(model_path,), name="engine-compile", daemon=True
            ).start()
            return
        calibration = None
        if precision in COMPILED_PRECISIONS:
            calibration = self._calibration(model_path)
        self.engine = make_engine(self.model, model_path, precision, calibration, info.max_length, self.packed)

    def _calibration(self, model_path: str) -> list[tuple[np.ndarray, ...]]:
        texts = read_calibration_texts(model_path, fallback=DEFAULT_MODEL_DIR)
        return [arrays for _, arrays in self._batches(self.preprocess(texts))]

    def _cached_engine(self, model_path: str, cache: EngineCache, fast_start: bool, start_precision: str):
        """The compiled engine from the cache; else built now (``fast_start`` false), or built by
        a background process while ``start_precision`` serves (then switched to)."""
        key = EngineKey(
            model_digest(model_path, calibration_file(model_path, fallback=DEFAULT_MODEL_DIR)),
            self.precision,
            self.packed,
            self.info.max_length,
            bf16_supported(),
        )
        started = time.monotonic()
        engine = self._load_package(cache, key)
        if engine is not None:
            log.info(
                "loaded the compiled %s engine from %s in %.1f s",
                self.precision,
                engine.package,
                time.monotonic() - started,
            )
            return engine
        if not fast_start:
            with cache.lock(key):  # another process may be building it: wait, then take its package
                engine = self._load_package(cache, key)
                if engine is None:
                    log.info(
                        "compiling the %s engine into %s (a minute or more, once)", self.precision, cache.entry(key)
                    )
                    calibration = self._calibration(model_path)
                    cache.store(
                        key,
                        lambda path: compile_package(
                            self.model,
                            calibration,
                            path,
                            self.precision == "int8-static",
                            self.info.max_length,
                            self.packed,
                            key.mixed_bf16,
                        ),
                    )
                    engine = self._load_package(cache, key)
            if engine is None:
                raise RuntimeError(f"the compiled engine in {cache.entry(key)} did not load after building it")
            return engine
        command = build_command(model_path, self.precision, cache.folder, self.packed, self.batch_size)
        engine = self._start_engine(model_path, start_precision, f"building {self.precision}")
        threading.Thread(
            target=self._build_then_switch, args=(command, cache, key), name="engine-build", daemon=True
        ).start()
        return engine

    def _start_engine(self, model_path: str, start_precision: str, state: str):
        """The eager engine that serves while the compiled one is prepared in the background."""
        if start_precision in COMPILED_PRECISIONS or not takes_packed_rows(start_precision):
            raise ValueError(f"the start engine must be fp32, bf16 or int8, got {start_precision!r}")
        self.engine_name, self.engine_state = start_precision, state
        log.info("serving with %s while the %s engine is prepared in the background", start_precision, self.precision)
        return make_engine(self.model, model_path, start_precision, None, self.info.max_length, self.packed)

    def _compile_then_switch(self, model_path: str) -> None:
        """Quantize and compile the engine in this process (just in time), warm it up, then serve with it.

        Runs at a lower CPU priority (:func:`background_priority`), so that serving with the start
        engine, and the rest of a pipeline starting on the same cores, go first.
        """
        started = time.monotonic()
        background_priority()
        try:
            engine = self._compile(model_path)
        except Exception as e:
            # A process killed while Inductor wrote its on-disk cache can leave a damaged file there
            # ("file too short"), which fails every later compile: try once more in a cache of our own.
            fresh = tempfile.mkdtemp(prefix="tweetsent-inductor-")
            log.warning(
                "compiling the %s engine failed (%s: %s); trying again with a fresh Inductor cache in %s",
                self.precision,
                type(e).__name__,
                str(e).splitlines()[0][:300] if str(e) else "",
                fresh,
            )
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = fresh
            from torch._inductor.utils import clear_caches

            clear_caches()  # Inductor's in-memory caches still point into the old folder
            try:
                engine = self._compile(model_path)
            except Exception as again:
                self.engine_state = (
                    f"compiling {self.precision} failed ({type(again).__name__}: {str(again)[:300]}); "
                    f"serving with {self.engine_name}"
                )
                log.exception("compiling the %s engine failed again", self.precision)
                if self.on_engine_change is not None:
                    self.on_engine_change()  # /model says so
                return
        self._switch_to(engine, started, "compiled in this process", warm=False)

    def _compile(self, model_path: str):
        """The compiled engine, warmed up (torch.compile compiles at the first passes)."""
        engine = make_engine(
            self.model, model_path, self.precision, self._calibration(model_path), self.info.max_length, self.packed
        )
        self._warm(engine)
        return engine

    def _load_package(self, cache: EngineCache, key: EngineKey) -> PackagedEngine | None:
        package = cache.package(key)
        if package is None:
            return None
        try:
            return PackagedEngine(package)
        except Exception as e:  # a package that torch cannot load is as good as missing
            cache.discard(key, f"it does not load: {type(e).__name__}: {e}")
            return None

    def _build_then_switch(self, command: list[str], cache: EngineCache, key: EngineKey) -> None:
        """Build the compiled engine in a process of its own, warm it up, then serve with it."""
        started = time.monotonic()
        code = build_in_background(command).wait()
        engine = self._load_package(cache, key) if code == 0 else None
        if engine is None:
            self.engine_state = f"the {self.precision} build failed (exit code {code}); serving with {self.engine_name}"
            log.error("%s; see the log above", self.engine_state)
            return
        self._switch_to(engine, started, str(engine.package))

    def _warm(self, engine) -> None:
        """Run ``engine`` on the shapes the service sees (compiled engines: their first passes of a shape are slow)."""
        texts = read_calibration_texts(DEFAULT_MODEL_DIR)
        for n in (1, 2, 8, 32, len(texts)):
            for _, arrays in self._batches(self.preprocess(texts[:n])):
                engine.logits(*arrays)

    def _switch_to(self, engine, started: float, where: str, warm: bool = True) -> None:
        """Warm ``engine`` up (unless it is already), then serve with it from the next pass."""
        if warm:
            self._warm(engine)
        with self._lock:
            previous, self.engine = self.engine_name, engine
            self.engine_name, self.engine_state = self.precision, "ready"
        log.info(
            "switched engine from %s to the compiled %s (%s), %.0f s after start",
            previous,
            self.precision,
            where,
            time.monotonic() - started,
        )
        if self.on_engine_change is not None:
            self.on_engine_change()

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path = DEFAULT_MODEL_DIR,
        band: NeutralBand = NeutralBand(),
        batch_size: int = 64,
        precision: str = "fp32",
        pack: bool = True,
        engine_cache: str | None = None,
        fast_start: bool = False,
        start_precision: str = "int8",
    ) -> SentimentPredictor:
        """Load a model directory or Hugging Face hub name.

        ``precision`` picks the engine (see :mod:`model_api.engines`): ``fp32``, ``bf16``, ``int8``
        (eager torch), ``int8-static`` or ``int8-dynamic`` (PT2E int8 compiled by Inductor on first
        use), ``onnx`` or ``onnx-int8`` (ONNX Runtime; exported and cached on first use).
        ``pack``: pack several texts into each row of a forward pass where the model is a BERT
        classifier and the engine a torch one (:mod:`model_api.packing`).
        ``engine_cache``: a folder where the compiled int8 engines are kept
        (:mod:`model_api.engine_cache`); None compiles them in this process at every start.
        ``fast_start``: with a cache, an engine not in it is built by a background process
        while ``start_precision`` (an eager torch engine) serves; then the predictor switches.

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
        return cls(
            model,
            tokenizer,
            info,
            band=band,
            batch_size=batch_size,
            precision=precision,
            model_path=path,
            pack=pack,
            engine_cache=engine_cache,
            fast_start=fast_start,
            start_precision=start_precision,
        )

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        """Apply the preprocessing the model was trained on."""
        return normalise_all(texts, self.info.preprocessing)

    def _batches(self, prepared: list[str]):
        """Yield ``(indices, arrays)``, one forward pass each; ``indices`` put results back in order.

        Texts are tokenized once. Packed (``self.packed``): texts are packed into rows of
        ``max_length`` tokens, ``batch_size`` rows per pass, and ``arrays`` are
        :func:`model_api.packing.packed_arrays`. Otherwise ``arrays`` are ``(input_ids,
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
        for idx, arrays in self._batches(self.preprocess(texts)):
            with self._lock:
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
            "precision": self.precision,
            "engine": self.engine_name,
            "engine_state": self.engine_state,
            "neutral_band": {**self.band.to_dict(), "inclusive": True},
        }
