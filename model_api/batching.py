"""Micro-batching: concurrent single-text requests in one worker share forward passes.

Request threads call :meth:`MicroBatcher.submit`; one background thread takes what is queued,
waits at most ``max_wait_ms`` after the first text for more (up to ``max_batch`` texts), runs one
prediction for all of them and hands each caller its own results.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)


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

    def _collect(self) -> list[tuple[list[str], Future]]:
        first = self._queue.get()
        items, size = [first], len(first[0])
        deadline = time.monotonic() + self.max_wait
        while size < self.max_batch:
            remaining = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            items.append(item)
            size += len(item[0])
        return items

    def _run(self) -> None:
        while True:
            items = self._collect()
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
