"""How the model's engine is chosen and prepared: eager, compiled, cached, or started fast.

Usage: ``SentimentPredictor.from_pretrained(path, precision="int8-static", engine_cache=folder, fast_start=True)``
(:mod:`model_api.model.predictor`) reads the model and gives it its engine with :func:`prepare_engine`.

The model (:class:`model_api.model.predictor.SentimentPredictor`) runs its forward passes on the engine
it is given and does not know which it got. :class:`ServedEngine` is that engine: it prepares the
engine of a precision (:mod:`model_api.model.engines`); for the compiled int8 ones, it takes the package
from the engine cache (:mod:`model_api.model.engine_cache`) or compiles it, and with fast start serves an
eager engine meanwhile: the compiled one is built in the background (by a process of its own,
:mod:`model_api.build_engine`, with a cache; in a thread of this process without one), then
warmed up and switched to, and ``on_change`` is called. The background work begins at
:meth:`ServedEngine.start` (``from_pretrained`` calls it), never in a constructor.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from model_api.model.engine_cache import EngineCache, EngineKey, model_digest
from model_api.model.engines import PackagedEngine, bf16_supported, make_engine, quantized_int8, takes_packed_rows
from model_api.model.locations import DEFAULT_MODEL_DIR
from model_api.model.torch_setup import fresh_inductor_cache
from sentiment.config import COMPILED_PRECISIONS
from sentiment.model_dir import calibration_file, read_calibration_texts

if TYPE_CHECKING:  # the predictor imports this module
    from model_api.model.predictor import SentimentPredictor

log = logging.getLogger(__name__)

BACKGROUND_NICENESS = 10


def prepare_engine(
    model: SentimentPredictor,
    precision: str = "fp32",
    model_path: str | None = None,
    cache: EngineCache | None = None,
    fast_start: bool = False,
    start_precision: str = "int8",
) -> ServedEngine:
    """Give ``model`` the engine of ``precision`` (see ``SentimentPredictor.from_pretrained``); its background work,
    if any, begins at the returned engine's :meth:`~ServedEngine.start`."""
    engine = ServedEngine(model, precision, model_path or str(DEFAULT_MODEL_DIR), cache, fast_start, start_precision)
    model.engine = engine
    return engine


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


class ServedEngine:
    """The engine a model serves with now (``logits`` runs it), its name and state, and the
    compiled engine prepared in the background to replace it (see the module docstring)."""

    def __init__(
        self,
        model: SentimentPredictor,
        precision: str,
        model_path: str,
        cache: EngineCache | None = None,
        fast_start: bool = False,
        start_precision: str = "int8",
    ) -> None:
        self.model = model
        self.precision = precision
        self.model_path = model_path
        self.name = precision  # the engine serving now
        self.state = "ready"  # or "building <precision>", or why the compiled engine is missing
        # Called (from a background thread) when the serving engine changes.
        self.on_change: Callable[[], None] | None = None
        self._background: Callable[[], None] | None = None  # what start() runs in a thread
        self._thread_name = ""
        if precision in COMPILED_PRECISIONS and cache is not None:
            self.current = self._cached(cache, fast_start, start_precision)
        elif precision in COMPILED_PRECISIONS and fast_start:
            self.current = self._start_engine(start_precision, f"compiling {precision}")
            self._background, self._thread_name = self._compile_then_switch, "engine-compile"
        else:
            calibration = self._calibration() if precision in COMPILED_PRECISIONS else None
            self.current = self._make(precision, calibration)

    def start(self) -> ServedEngine:
        """Begin preparing the compiled engine in the background, where one is to be."""
        if self._background is not None:
            threading.Thread(target=self._background, name=self._thread_name, daemon=True).start()
            self._background = None
        return self

    def logits(self, *arrays: np.ndarray) -> np.ndarray:
        return self.current.logits(*arrays)

    def describe(self) -> dict:
        return {"precision": self.precision, "engine": self.name, "engine_state": self.state}

    def _make(self, precision: str, calibration: list[tuple[np.ndarray, ...]] | None = None):
        model = self.model
        return make_engine(model.model, self.model_path, precision, calibration, model.info.max_length, model.packed)

    def _calibration(self) -> list[tuple[np.ndarray, ...]]:
        texts = read_calibration_texts(self.model_path, fallback=DEFAULT_MODEL_DIR)
        return [arrays for _, arrays in self.model.passes(texts)]

    def _cached(self, cache: EngineCache, fast_start: bool, start_precision: str):
        """The compiled engine from the cache; else built now (``fast_start`` false), or built by
        a background process while ``start_precision`` serves (then switched to)."""
        model = self.model
        calibration = calibration_file(self.model_path, fallback=DEFAULT_MODEL_DIR)
        key = EngineKey(
            model_digest(self.model_path, calibration),
            self.precision,
            model.packed,
            model.info.max_length,
            bf16_supported(),
        )
        started = time.monotonic()
        engine = load_package(cache, key)
        if engine is not None:
            log.info(
                "loaded the compiled %s engine from %s in %.1f s",
                self.precision,
                engine.package,
                time.monotonic() - started,
            )
            return engine
        if not fast_start:
            return self._build_now(cache, key)
        command = build_command(self.model_path, self.precision, cache.folder, model.packed, model.batch_size)
        engine = self._start_engine(start_precision, f"building {self.precision}")
        self._background = lambda: self._build_then_switch(command, cache, key)
        self._thread_name = "engine-build"
        return engine

    def _build_now(self, cache: EngineCache, key: EngineKey) -> PackagedEngine:
        """Compile the engine into the cache here, unless another process is at it: then wait
        for it and take its package."""
        with cache.lock(key):
            engine = load_package(cache, key)
            if engine is None:
                log.info("compiling the %s engine into %s (a minute or more, once)", self.precision, cache.entry(key))
                calibration = self._calibration()
                model = self.model
                static = self.precision == "int8-static"
                cache.store(
                    key,
                    lambda path: compile_package(
                        model.model, calibration, path, static, model.info.max_length, model.packed, key.mixed_bf16
                    ),
                )
                engine = load_package(cache, key)
        if engine is None:
            raise RuntimeError(f"the compiled engine in {cache.entry(key)} did not load after building it")
        return engine

    def _start_engine(self, start_precision: str, state: str):
        """The eager engine that serves while the compiled one is prepared in the background."""
        if start_precision in COMPILED_PRECISIONS or not takes_packed_rows(start_precision):
            raise ValueError(f"the start engine must be fp32, bf16 or int8, got {start_precision!r}")
        self.name, self.state = start_precision, state
        log.info("serving with %s while the %s engine is prepared in the background", start_precision, self.precision)
        return self._make(start_precision)

    def _compile_then_switch(self) -> None:
        """Quantize and compile the engine in this process (just in time), warm it up, then serve with it.

        Runs at a lower CPU priority (:func:`background_priority`), so that serving with the start
        engine, and the rest of a pipeline starting on the same cores, go first.
        """
        started = time.monotonic()
        background_priority()
        try:
            engine = self._compile()
        except Exception as e:
            # A process killed while Inductor wrote its on-disk cache can leave a damaged file there
            # ("file too short"), which fails every later compile: try once more in a cache of our own.
            fresh = fresh_inductor_cache()
            log.warning(
                "compiling the %s engine failed (%s: %s); trying again with a fresh Inductor cache in %s",
                self.precision,
                type(e).__name__,
                str(e).splitlines()[0][:300] if str(e) else "",
                fresh,
            )
            try:
                engine = self._compile()
            except Exception as again:
                self.state = (
                    f"compiling {self.precision} failed ({type(again).__name__}: {str(again)[:300]}); "
                    f"serving with {self.name}"
                )
                log.exception("compiling the %s engine failed again", self.precision)
                self._changed()  # /model says so
                return
        self._switch_to(engine, started, "compiled in this process", warm=False)

    def _compile(self):
        """The compiled engine, warmed up (torch.compile compiles at the first passes)."""
        engine = self._make(self.precision, self._calibration())
        self._warm(engine)
        return engine

    def _build_then_switch(self, command: list[str], cache: EngineCache, key: EngineKey) -> None:
        """Build the compiled engine in a process of its own, warm it up, then serve with it."""
        started = time.monotonic()
        code = build_in_background(command).wait()
        engine = load_package(cache, key) if code == 0 else None
        if engine is None:
            self.state = f"the {self.precision} build failed (exit code {code}); serving with {self.name}"
            log.error("%s; see the log above", self.state)
            return
        self._switch_to(engine, started, str(engine.package))

    def _warm(self, engine) -> None:
        """Run ``engine`` on the shapes the service sees (compiled engines: their first passes of a shape are slow)."""
        texts = read_calibration_texts(DEFAULT_MODEL_DIR)
        for n in (1, 2, 8, 32, len(texts)):
            for _, arrays in self.model.passes(texts[:n]):
                engine.logits(*arrays)

    def _switch_to(self, engine, started: float, where: str, warm: bool = True) -> None:
        """Warm ``engine`` up (unless it is already), then serve with it from the next pass."""
        if warm:
            self._warm(engine)
        previous = self.name
        with self.model.passing:  # not in the middle of a pass
            self.current, self.name, self.state = engine, self.precision, "ready"
        log.info(
            "switched engine from %s to the compiled %s (%s), %.0f s after start",
            previous,
            self.precision,
            where,
            time.monotonic() - started,
        )
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()


def load_package(cache: EngineCache, key: EngineKey) -> PackagedEngine | None:
    """The cached engine of ``key``, or None; an entry torch cannot load is removed."""
    package = cache.package(key)
    if package is None:
        return None
    try:
        return PackagedEngine(package)
    except Exception as e:  # a package that torch cannot load is as good as missing
        cache.discard(key, f"it does not load: {type(e).__name__}: {e}")
        return None


def compile_package(
    model: torch.nn.Module,
    calibration: list[tuple[np.ndarray, ...]],
    path: Path,
    static: bool,
    max_length: int,
    packed: bool,
    mixed_bf16: bool,
) -> None:
    """Quantize ``model`` as the compiled int8 engine does and compile it ahead of time to ``path``.
    With ``mixed_bf16`` the floating-point ops are captured under bf16 autocast."""
    from torch.export import export

    converted, example, dynamic = quantized_int8(model, calibration, static, max_length, packed)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed_bf16):
        program = export(converted, example, dynamic_shapes=dynamic)
    torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs={"freezing": True})


def build_command(model_path: str, precision: str, folder: Path, packed: bool, batch_size: int) -> list[str]:
    """The command that builds one entry in a process of its own (:mod:`model_api.build_engine`)."""
    command = [sys.executable, "-m", "model_api.build_engine", "--model", model_path]
    command += ["--precision", precision, "--cache", str(folder), "--batch-size", str(batch_size)]
    return command + ([] if packed else ["--no-pack"])


def build_in_background(command: list[str]) -> subprocess.Popen:
    """Start a build at low CPU priority, so that the engine serving meanwhile keeps the cores."""
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen(command, env=env, preexec_fn=lambda: os.nice(10))
