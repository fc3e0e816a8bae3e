"""Micro-batching: concurrent requests share forward passes.

:func:`take_batch` is the rule: take the first waiting request, then more until ``max_texts``
texts or ``max_wait`` seconds after the first. :class:`MicroBatcher` applies it inside one process
(request threads call :meth:`MicroBatcher.submit`; one thread, from :meth:`MicroBatcher.start`,
runs one prediction for the batch and hands each caller its own results); the model process
(:mod:`model_api.runner.model_process`) applies it to the requests its worker sends.
:class:`InWorker` serves a predictor of this process as the model processes are served: its calls
run on threads and answer through futures.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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


class _Wrapper:
    """What a predictor around another (``inner``) passes on: its description, health and warm-up."""

    inner: Any

    def describe(self) -> dict:
        return self.inner.describe()

    def health(self) -> dict:
        return self.inner.health() if hasattr(self.inner, "health") else {"status": "ok"}

    def warm_up(self) -> None:
        if hasattr(self.inner, "warm_up"):
            self.inner.warm_up()


class MicroBatcher(_Wrapper):
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

    def start(self) -> MicroBatcher:
        """Start the thread that runs the batches; calls wait in the queue until then."""
        threading.Thread(target=self._run, name="micro-batcher", daemon=True).start()
        return self

    def submit(self, texts: Sequence[str], timeout: float | None = None) -> list[Any]:
        """Predict ``texts`` (sharing a forward pass with concurrent callers) and return the results."""
        future: Future = Future()
        self._queue.put((list(texts), future))
        return future.result(timeout=timeout)

    def predict(self, texts: Sequence[str]) -> list[Any]:
        """:meth:`submit` with the batcher's timeout."""
        return self.submit(texts, self.timeout)

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


class PassCost:
    """What a prediction costs per text, measured: a moving average over the predictions seen.

    Args:
        seconds_per_text: the estimate before any prediction was measured.
        weight: how much each new measurement moves the estimate (0 to 1).
        min_texts: predictions of fewer texts are left out (their fixed costs dominate).
    """

    def __init__(self, seconds_per_text: float = 0.001, weight: float = 0.2, min_texts: int = 32) -> None:
        if seconds_per_text <= 0 or not 0 < weight <= 1:
            raise ValueError(f"seconds_per_text must be > 0 and weight in (0, 1], got {seconds_per_text}, {weight}")
        self.seconds_per_text = seconds_per_text
        self.weight = weight
        self.min_texts = min_texts

    def observe(self, texts: int, seconds: float) -> None:
        if texts >= self.min_texts and seconds > 0:
            self.seconds_per_text += self.weight * (seconds / texts - self.seconds_per_text)


def texts_within(budget_seconds: float, seconds_per_text: float, most: int, least: int = 64) -> int:
    """How many texts one micro-batch may take so that its prediction ends within the budget:
    at least ``least``, at most ``most``; a budget of 0 means no budget (``most``).

    The floor keeps micro-batches large enough to be measured (:class:`PassCost` leaves out the
    smallest) and efficient: a pass also has a fixed cost, which on a busy machine dominates;
    without a floor the cost per text would rise, the batches shrink, the cost per text rise
    again, and so on down to one text per pass (measured: 33 tweets/s with a floor of 16).
    """
    if budget_seconds <= 0:
        return most
    return max(min(least, most), min(most, int(budget_seconds / seconds_per_text)))


Request = tuple[int, list[str]]  # (number, texts)
# ((number, start, end, total), texts): texts[start:end] of a request of ``total`` texts.
Slice = tuple[tuple[int, int, int, int], list[str]]


def shape_batch(small: deque[Request], bulk: deque[Request], max_texts: int) -> list[Slice]:
    """Take one micro-batch of at most ``max_texts`` texts: the small requests first, in order,
    then the large ones, the last of which may be cut (its rest stays first in ``bulk``).

    A small request is never cut, and the batch always takes something when anything waits, so
    a single text is never starved by a stream of large requests: it waits at most for the
    prediction running when it came. Returns ``((number, start, end, total), texts)`` slices: the
    request's texts from ``start`` to ``end``, of its ``total``.
    """
    batch: list[Slice] = []
    room = max_texts
    while small and (room >= len(small[0][1]) or not batch):
        number, texts = small.popleft()
        batch.append(((number, 0, len(texts), len(texts)), texts))
        room -= len(texts)
    while bulk and (room > 0 or not batch):
        number, texts = bulk.popleft()
        offset, total = 0, len(texts)
        if isinstance(texts, _Rest):
            offset, total, texts = texts.offset, texts.total, texts.texts
        take = max(room, 1)
        batch.append(((number, offset, offset + min(take, len(texts)), total), texts[:take]))
        room -= min(take, len(texts))
        if take < len(texts):
            bulk.appendleft((number, _Rest(offset + take, total, texts[take:])))
    return batch


class _Rest:
    """The texts of a large request that a micro-batch left, and where they start in it."""

    __slots__ = ("offset", "texts", "total")

    def __init__(self, offset: int, total: int, texts: list[str]) -> None:
        self.offset, self.total, self.texts = offset, total, texts

    def __len__(self) -> int:
        return len(self.texts)


class BudgetQueue:
    """The requests waiting for the model, taken as micro-batches shaped by :func:`shape_batch`.

    Requests of at most ``small_texts`` texts (single tweets) go to a queue of their own, served
    first; larger ones are cut to fit the budget. The budget holds while small requests are about
    (one waits, or one came within ``small_seconds``): with large requests alone, micro-batches
    take up to their full size, since nobody waits for a short pass and full passes score the
    most texts per second. ``put(None)`` closes the queue.
    """

    def __init__(
        self, small_texts: int = 8, small_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.small_texts = small_texts
        self.small_seconds = small_seconds
        self._clock = clock
        self._last_small = float("-inf")
        self._small: deque[Request] = deque()
        self._bulk: deque[Request] = deque()
        self._ready = threading.Condition()
        self._closed = False

    def put(self, request: Request | None) -> None:
        with self._ready:
            if request is None:
                self._closed = True
            elif len(request[1]) <= self.small_texts:
                self._small.append(request)
                self._last_small = self._clock()
            else:
                self._bulk.append(request)
            self._ready.notify()

    def _count(self) -> int:
        return sum(len(t) for _, t in self._small) + sum(len(t) for _, t in self._bulk)

    def cancel(self, number: int) -> bool:
        """Drop request ``number`` if no micro-batch has taken any of it (its caller is gone).
        Returns whether it was dropped; a request already begun is finished."""
        with self._ready:
            for waiting in (self._small, self._bulk):
                for request in waiting:
                    if request[0] == number and not isinstance(request[1], _Rest):
                        waiting.remove(request)
                        return True
        return False

    def take(self, max_texts: int, max_wait: float, full_texts: int | None = None) -> list[Slice] | None:
        """Block for the first request, wait up to ``max_wait`` seconds for ``max_texts`` texts
        (``full_texts`` when no small request is about), then shape a batch. Returns None once
        closed and empty."""
        with self._ready:
            self._ready.wait_for(lambda: self._small or self._bulk or self._closed)
            if not (self._small or self._bulk):
                return None
            if full_texts is not None and not self._small and self._clock() - self._last_small > self.small_seconds:
                max_texts = full_texts
            deadline = time.monotonic() + max_wait
            while not self._closed and self._count() < max_texts:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._ready.wait(remaining):
                    break
            return shape_batch(self._small, self._bulk, max_texts)


class InWorker(_Wrapper):
    """A predictor of this process (``service.engine_process = false``, or a test's fake) with the
    interface of the model processes (:class:`~model_api.runner.interface.ServedPredictor`): each
    call to ``pending`` runs ``predict`` on one of ``threads`` threads (enough for a
    :class:`MicroBatcher` behind it to gather its batches) and returns its future at once."""

    def __init__(self, predictor: Any, threads: int) -> None:
        self.inner = predictor
        self.on_batch: Callable[[int, float], None] | None = None
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="model-call")  # started when used
        self._running = 0
        self._lock = threading.Lock()

    def pending(self, texts: Sequence[str]) -> list[_Call]:
        with self._lock:
            self._running += 1
        future = self._threads.submit(self._timed, list(texts))
        future.add_done_callback(self._done)  # answered, failed or forgotten before it ran
        return [_Call(future)]

    def _timed(self, texts: list[str]) -> list[Any]:
        started = time.perf_counter()
        results = self.inner.predict(texts)
        if self.on_batch is not None:
            self.on_batch(len(texts), time.perf_counter() - started)
        return results

    def _done(self, _: Future) -> None:
        with self._lock:
            self._running -= 1

    def predict(self, texts: Sequence[str]) -> list[Any]:
        return self.inner.predict(texts)

    def in_flight(self) -> int:
        with self._lock:
            return self._running

    def close(self) -> None:
        self._threads.shutdown(wait=False)
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class _Call:
    """A call on its way in an :class:`InWorker` (a call already running cannot be taken back)."""

    def __init__(self, future: Future) -> None:
        self.future = future

    def forget(self) -> None:
        self.future.cancel()  # not begun: it never runs
