"""Micro-batching: concurrent requests share forward passes.

:func:`take_batch` is the rule: take the first waiting request, then more until ``max_texts``
texts or ``max_wait`` seconds after the first. :class:`MicroBatcher` applies it inside one process
(request threads call :meth:`MicroBatcher.submit`; one thread runs one prediction for the batch
and hands each caller its own results); the model process (:mod:`model_api.engine_process`)
applies it to the requests its worker sends.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


def take_batch(
    waiting: queue.Queue[T] | queue.SimpleQueue[T], max_texts: int, max_wait: float, size: Callable[[T], int]
) -> list[T]:
    """Block for the first item of ``waiting``, then take more until they hold ``max_texts`` texts
    (``size`` of each) or ``max_wait`` seconds have passed since the first; what is already
    queued is taken without waiting."""
    first = waiting.get()
    items, total = [first], size(first)
    deadline = time.monotonic() + max_wait
    while total < max_texts:
        remaining = deadline - time.monotonic()
        try:
            item = waiting.get(timeout=remaining) if remaining > 0 else waiting.get_nowait()
        except queue.Empty:
            break
        items.append(item)
        total += size(item)
    return items


class MicroBatcher:
    """A predictor that groups concurrent calls of another's ``predict(texts) -> list`` into shared
    batches. ``inner`` is a predictor (its ``describe``, ``health`` and ``warm_up`` are passed on)
    or a bare ``predict`` function. A shared batch that fails is retried call by call, so that one
    bad call fails alone."""

    def __init__(
        self,
        inner: Any,
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int, float], None] | None = None,
        timeout: float | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.inner = inner
        self._predict: Callable[[list[str]], list[Any]] = getattr(inner, "predict", inner)
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self.timeout = timeout
        self._queue: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Predict ``texts`` (sharing a forward pass with concurrent callers) and return the results."""
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result(timeout=timeout)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """:meth:`submit` with the batcher's timeout."""
        return self.submit(texts, self.timeout)

    def describe(self) -> dict:
        return self.inner.describe()

    def health(self) -> dict:
        return self.inner.health() if hasattr(self.inner, "health") else {"status": "ok"}

    def warm_up(self) -> None:
        if hasattr(self.inner, "warm_up"):
            self.inner.warm_up()

    def _run(self) -> None:
        while True:
            items = take_batch(self._queue, self.max_batch, self.max_wait, lambda item: len(item[0]))
            self._answer(items)

    def _answer(self, items: list[tuple[list[str], Future]]) -> None:
        texts = [t for item_texts, _ in items for t in item_texts]
        started = time.perf_counter()
        try:
            results = self._predict(texts)
        except Exception as e:
            if len(items) > 1:  # find the call that fails; the others are answered
                for item in items:
                    self._answer([item])
                return
            items[0][1].set_exception(e)
            return
        if self.on_batch is not None:
            self.on_batch(len(texts), time.perf_counter() - started)
        offset = 0
        for item_texts, future in items:
            future.set_result(results[offset : offset + len(item_texts)])
            offset += len(item_texts)
