"""The model a worker serves, and how it is replaced while the worker serves: :class:`ModelSlot`.

The app stores one slot; each scoring request reads :attr:`ModelSlot.serving` once (one
attribute read: the model, its version) and sends its texts to that model's processes. A swap
(``POST /admin/model``, :meth:`ModelSlot.swap`) starts the new model's processes beside the old
ones, warms them up, checks them (:func:`quick_check`), then replaces ``serving`` in one
assignment: the requests sent before it finish on the old model, those after go to the new one,
and each answer names the model that scored it. The old model's processes are closed once they
have answered what they hold. A model that does not load or fails the check is refused
(:class:`ModelRefused`) and the old one goes on serving. Several workers follow one another
through a shared folder (:mod:`model_api.runner.model_share`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from model_api.model.locations import check_model, model_location
from model_api.runner.batching import InWorker
from model_api.runner.interface import Predictor, ServedPredictor, collect
from sentiment.config import Config

log = logging.getLogger(__name__)

# Tweets any sentiment model must read the right way round: (text, positive?).
KNOWN_TWEETS = (("i love this, best day ever", True), ("this is awful, i hate it", False))
RETIRE_GRACE_SECONDS = 0.5  # a request that read ``serving`` just before the switch has sent its texts by then


class ModelRefused(ValueError):
    """A model that cannot be served (does not load, labels unreadable, fails the quick check)."""


class SwapBusy(RuntimeError):
    """Another model is loading in this service."""


@dataclasses.dataclass(frozen=True)
class Serving:
    """One served model: its predictor, where it was loaded from and its ``name@version``."""

    predictor: ServedPredictor
    model: str
    version: str
    info: dict


def version_of(info: dict) -> str:
    """``name@version``, as the job writes it in ``model_version``."""
    return f"{info.get('name', 'model')}@{info.get('version', 'unversioned')}"


def served(predictor: Predictor, threads: int) -> ServedPredictor:
    """``predictor`` as the front waits on it: model processes as they are, any other on threads
    (:class:`~model_api.runner.batching.InWorker`)."""
    return predictor if isinstance(predictor, ServedPredictor) else InWorker(predictor, threads)


def serving(predictor: ServedPredictor, model: str) -> Serving:
    info = predictor.describe()
    return Serving(predictor, model, version_of(info), info)


def check_location(config: Config) -> str:
    """Where ``config.service.model`` points, after reading its classes and metadata.

    Raises:
        ModelRefused: a path that is not there, a folder without ``config.json``, unreadable labels.
    """
    location = model_location(config)
    path = Path(location)
    looks_like_path = location.startswith((".", "/", "~")) or path.exists()
    if looks_like_path and not path.is_dir():
        raise ModelRefused(f"{location}: no such model directory")
    if path.is_dir() and not (path / "config.json").is_file():
        raise ModelRefused(f"{location}: not a model directory (no config.json)")
    try:
        check_model(config)
    except (ValueError, OSError) as e:
        raise ModelRefused(f"{location}: its classes or metadata cannot be read: {e}") from None
    return str(path.resolve()) if path.is_dir() else location


def quick_check(predictor: Predictor) -> None:
    """Score :data:`KNOWN_TWEETS`: each must fall on its side of the model's neutral band.

    Raises:
        ModelRefused: a wrong count, a probability outside [0, 1], or a tweet on the wrong side.
    """
    band = predictor.describe().get("neutral_band") or {"low": 0.4, "high": 0.6}
    texts = [text for text, _ in KNOWN_TWEETS]
    results = [r.to_dict() for r in predictor.predict(texts)]
    if len(results) != len(texts):
        raise ModelRefused(f"the quick check got {len(results)} predictions for {len(texts)} texts")
    for (text, positive), result in zip(KNOWN_TWEETS, results, strict=True):
        p = float(result.get("p_positive", math.nan))
        if not 0.0 <= p <= 1.0:
            raise ModelRefused(f"the quick check: p_positive {p} for {text!r} is not a probability")
        right = p > band["high"] if positive else p < band["low"]
        if not right:
            side = f"> {band['high']}" if positive else f"< {band['low']}"
            raise ModelRefused(f"the quick check: {text!r} scored p_positive {p:.3f}, expected {side}")


def cannot_load(config: Config) -> Predictor:
    """The ``build`` of a slot that serves the one predictor it was given and loads no other.

    Raises:
        ModelRefused: always.
    """
    raise ModelRefused("this service was started without a way to load models (no build function)")


class ModelSlot:
    """The served model of one worker, replaceable while it serves (see the module docstring).

    Args:
        build: builds a predictor from a configuration (the worker passes
            :func:`model_api.runner.runtime.build_predictor`; tests pass a fake; :func:`cannot_load` refuses
            every swap).
        generation: the swap this model came from (0: the configured one).
    """

    def __init__(
        self,
        config: Config,
        predictor: Predictor,
        build: Callable[[Config], Predictor],
        generation: int = 0,
        previous: str | None = None,
    ) -> None:
        self.config = config
        self._build = build
        self.serving = serving(served(predictor, config.service.threads), model_location(config))
        self.previous = previous
        self.generation = generation
        self.loading: dict | None = None  # the model being loaded, and since when
        self.switching = False  # /health answers 503 "switching" (a rolling roll-out routes around it)
        self.observe: Callable[[int, float], None] | None = None  # metrics: (texts, seconds) per prediction
        self.on_change: Callable[[Serving | None, Serving | None, dict | None], None] | None = None
        self.share: Any = None  # a model_api.runner.model_share.SharedModel when several workers follow one another
        self._lock = threading.Lock()
        self.serving.predictor.on_batch = self._observed

    def _observed(self, texts: int, seconds: float) -> None:
        if self.observe is not None:
            self.observe(texts, seconds)

    # The serving path: one attribute read (the front reads ``serving`` and awaits its
    # ``pending``), then the model's own calls.

    def score(self, texts: Sequence[str]) -> tuple[str, list]:
        """(version, predictions) of ``texts``, blocking until they come (at most ``service.timeout_seconds``)."""
        current = self.serving
        return current.version, collect(current.predictor.pending(texts), self.config.service.timeout_seconds)

    def predict(self, texts: Sequence[str]) -> list:
        return self.score(texts)[1]

    def describe(self) -> dict:
        """The serving model's description, with ``model`` (where it was loaded from),
        ``model_version``, ``previous`` and, while one loads, ``loading``."""
        current = self.serving
        # Live, not the snapshot taken at load: the engine may have switched since (fast start).
        info = {**current.predictor.describe(), "model": current.model, "model_version": current.version}
        info.update(previous=self.previous, generation=self.generation)
        if self.loading is not None:
            info["loading"] = dict(self.loading)
        return info

    def health(self) -> dict:
        state = dict(self.serving.predictor.health())
        if state.get("status") == "ok" and (self.switching or (self.share is not None and self.share.switching())):
            return {**state, "status": "switching", "reason": "a new model is being rolled out on this replica"}
        return state

    def warm_up(self) -> None:
        self.serving.predictor.warm_up()

    def close(self) -> None:
        if self.share is not None:
            self.share.stop()
        _close(self.serving.predictor)

    # Swapping.

    def swap(self, model: str, generation: int | None = None) -> dict:
        """Load ``model`` beside the serving one, check it, and serve it (see the module docstring).

        Returns:
            ``{"version", "model", "previous", "previous_version", "generation", "seconds"}``.

        Raises:
            ModelRefused: it cannot be served; the old model serves on.
            SwapBusy: another model is loading.
        """
        if not self._lock.acquire(blocking=False):
            loading = (self.loading or {}).get("model", "another model")
            raise SwapBusy(f"{loading} is loading; try again when it is served or refused")
        try:
            return self._swap(model, generation)
        finally:
            if self.loading is not None:  # refused: no longer loading
                self.loading = None
                self._changed(None, None)
            self._lock.release()

    def _swap(self, model: str, generation: int | None) -> dict:
        started = time.monotonic()
        config = dataclasses.replace(self.config, service=dataclasses.replace(self.config.service, model=model))
        location = check_location(config)
        config = dataclasses.replace(config, service=dataclasses.replace(config.service, model=location))
        self.loading = {"model": location, "since": time.time()}
        self._changed(None, None)
        log.warning("loading the model %s beside %s", location, self.serving.version)
        try:
            new = self._build(config)
        except ModelRefused:
            raise
        except Exception as e:
            raise ModelRefused(f"{location} did not load: {type(e).__name__}: {str(e)[:500]}") from None
        try:
            new.warm_up()
            quick_check(new)
        except Exception as e:
            _close(new)
            if isinstance(e, ModelRefused):
                raise ModelRefused(f"{location}: {e}") from None
            raise ModelRefused(f"{location} failed the quick check: {type(e).__name__}: {e}") from None
        new = served(new, config.service.threads)
        new.on_batch = self._observed
        old, self.serving = self.serving, serving(new, location)  # the switch: one assignment
        self.previous, self.generation = old.model, generation if generation is not None else self.generation + 1
        self.config = config
        self.loading = None
        self._changed(old, self.serving)
        threading.Thread(target=self._retire, args=(old,), name="model-retire", daemon=True).start()
        log.warning("serving %s (from %s) instead of %s", self.serving.version, location, old.version)
        return {
            "model": location,
            "version": self.serving.version,
            "previous": old.model,
            "previous_version": old.version,
            "generation": self.generation,
            "seconds": round(time.monotonic() - started, 2),
        }

    def _changed(self, old: Serving | None, new: Serving | None) -> None:
        if self.on_change is not None:
            self.on_change(old, new, self.loading)

    def _retire(self, old: Serving) -> None:
        """Close ``old`` once it has answered what was sent to it (at most ``service.timeout_seconds``)."""
        time.sleep(RETIRE_GRACE_SECONDS)
        in_flight = getattr(old.predictor, "in_flight", None)
        deadline = time.monotonic() + self.config.service.timeout_seconds
        while time.monotonic() < deadline and (in_flight is None or in_flight() > 0):
            time.sleep(0.1)
        try:
            _close(old.predictor)
        except Exception as e:  # a model that closes badly must not stop the one that serves
            log.warning("closing the model %s: %s: %s", old.version, type(e).__name__, e)


def _close(predictor: Predictor) -> None:
    close = getattr(predictor, "close", None)
    if close is not None:
        close()
