"""Micro-batching: concurrent requests share forward passes.

:func:`take_batch` is the rule: take the first waiting request, then more until ``max_texts``
texts or ``max_wait`` seconds after the first. :class:`MicroBatcher` applies it inside one process
(request threads call :meth:`MicroBatcher.submit`; one thread runs one prediction for the batch
and hands each caller its own results); the model process (:mod:`model_api.engine_process`)
applies it to the requests its worker sends.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

log = logging.getLogger(__name__)

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
    """Groups concurrent calls of ``predict(texts) -> list`` into shared batches."""

    def __init__(
        self,
        predict: Callable[[list[str]], list[Any]],
        max_batch: int = 64,
        max_wait_ms: float = 5.0,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch must be >= 1 and max_wait_ms >= 0, got {max_batch}, {max_wait_ms}")
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait = max_wait_ms / 1000
        self.on_batch = on_batch
        self._queue: queue.Queue[tuple[list[str], Future]] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="micro-batcher", daemon=True)
        self._thread.start()

    def submit(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Predict ``texts`` (sharing a forward pass with concurrent callers) and return the results."""
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result(timeout=timeout)

    def _run(self) -> None:
        while True:
            items = take_batch(self._queue, self.max_batch, self.max_wait, lambda item: len(item[0]))
            texts = [t for item_texts, _ in items for t in item_texts]
            started = time.perf_counter()
            try:
                results = self.predict(texts)
            except Exception as e:  # hand the failure to every waiting caller
                log.exception("batched prediction failed")
                for _, future in items:
                    future.set_exception(e)
                continue
            if self.on_batch is not None:
                self.on_batch(len(texts), time.perf_counter() - started)
            offset = 0
            for item_texts, future in items:
                future.set_result(results[offset : offset + len(item_texts)])
                offset += len(item_texts)
