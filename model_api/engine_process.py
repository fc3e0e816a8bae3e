"""The model in a process of its own, so that forward passes never wait for the request threads.

Inside one worker, the request threads (HTTP, Flask, JSON) and the model share one interpreter
lock. A compiled forward pass is hundreds of kernel calls, and after each one the model thread
must win the lock back from whichever request thread holds it. In the single-tweet load test the
worker answered 464.7 requests/s with the model in its own process against 322.8 without. With
``service.engine_process = true`` each worker starts one child process that loads the predictor
and answers its calls over a socket pair; the worker keeps the HTTP work.

Micro-batching happens here too, next to the model: every request thread of the worker queues its
texts at once, tagged with a number, and one sender thread sends whatever is queued in one message
(request threads never wait on the socket); the model process queues them and, as soon as a
prediction ends, takes what is waiting into the next one (waiting at most
``service.micro_batch_wait_ms`` after the first for company), so the model never waits for the
worker to gather a batch. A micro-batch is shaped for a latency budget
(:class:`model_api.batching.BudgetQueue`): it takes only as many texts as its prediction scores in
``service.latency_budget_ms`` at the measured cost per text (and at most
``service.micro_batch_max``), single-text requests first; a larger request is cut across
micro-batches and answered when its last slice is scored. So a single tweet waits at most for the
prediction running when it came, never behind a whole ``/predict/batch``, and concurrent
``/predict/batch`` requests still share full passes. Each request is answered as soon as the
forward pass holding its last text ends, not when the whole batch is done. A batch whose
prediction fails is retried request by request, so one bad request fails alone.

The parent side, :class:`PredictorProcess`, has the predictor interface (``predict``,
``describe``, ``warm_up``) and reports each prediction's size and time to ``on_batch``.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

from model_api.batching import BudgetQueue, PassCost, take_batch, texts_within
from sentiment.config import Config

log = logging.getLogger(__name__)


class EngineProcessError(RuntimeError):
    """The model process failed to start, or exited."""


class RemotePredictionError(RuntimeError):
    """A prediction raised in the model process (which goes on serving)."""


class PredictorProcess:
    """A predictor that runs in a child process, which batches the concurrent calls it receives."""

    # The app leaves micro-batching to this predictor (see the module docstring).
    batches_concurrent_calls = True

    def __init__(self, config: Config, start_timeout: float = 900.0) -> None:
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "model_api.engine_process", str(child.fileno())],
            pass_fds=(child.fileno(),),
            env=env,
        )
        child.close()
        self._conn = Connection(parent.detach())
        self._lock = threading.Lock()  # guards the waiting futures and the exit error
        # Request threads only queue their texts; one thread sends whatever is queued in one
        # message. Sending from each request thread under a lock made them queue on that lock
        # behind the socket writes (p99 210 ms in the single-tweet load test).
        self._outbox: queue.SimpleQueue[tuple[int, list[str]] | None] = queue.SimpleQueue()
        self._waiting: dict[int, Future] = {}
        self._ids = itertools.count()
        self._gone: EngineProcessError | None = None
        # Called with (texts, seconds) after each prediction in the model process.
        self.on_batch: Callable[[int, float], None] | None = None
        self._conn.send(config)
        # Loading and warming up (for compiled engines: compiling) happen in the child.
        if not self._conn.poll(start_timeout):
            self.close()
            raise EngineProcessError(f"the model process did not start within {start_timeout:.0f} s")
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._exited() from None
        if status == "error":
            raise EngineProcessError(f"in the model process: {payload}")
        self._info = payload
        self._receiver = threading.Thread(target=self._receive, name="model-process-replies", daemon=True)
        self._receiver.start()
        self._sender = threading.Thread(target=self._send_queued, name="model-process-requests", daemon=True)
        self._sender.start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def _exited(self) -> EngineProcessError:
        try:
            code = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        return EngineProcessError(f"the model process exited with code {code}")

    def _receive(self) -> None:
        """Hand each reply to its caller; when the child is gone, fail every waiting call."""
        while True:
            try:
                replies, batch = self._conn.recv()
            except (EOFError, OSError):
                break
            if isinstance(batch, dict):  # the model process changed engine
                self._info = batch
            elif batch is not None and self.on_batch is not None:
                self.on_batch(*batch)
            for number, ok, payload in replies:
                with self._lock:
                    future = self._waiting.pop(number, None)
                if future is None:
                    continue  # its caller gave up waiting
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(RemotePredictionError(f"in the model process: {payload}"))
        gone = self._exited()
        with self._lock:
            self._gone = gone
            waiting, self._waiting = list(self._waiting.values()), {}
        for future in waiting:
            future.set_exception(gone)

    def _send_queued(self) -> None:
        """Send the queued requests, all that are waiting in one message, until closed."""
        while True:
            queued = take_batch(self._outbox, sys.maxsize, 0.0, lambda _: 1)  # all queued, no waiting
            requests = [r for r in queued if r is not None]
            try:
                if requests:
                    self._conn.send(requests)
            except OSError:
                gone = EngineProcessError("the model process exited")
                for number, _ in requests:
                    with self._lock:
                        future = self._waiting.pop(number, None)
                    if future is not None:
                        future.set_exception(gone)
            if len(requests) < len(queued):
                return  # closed

    def _send(self, texts: Sequence[str]) -> tuple[int, Future]:
        future: Future = Future()
        with self._lock:
            if self._gone is not None:
                raise self._gone
            number = next(self._ids)
            self._waiting[number] = future
        self._outbox.put((number, list(texts)))
        return number, future

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list:
        """Predictions for ``texts``, batched in the model process with concurrent calls.

        Raises:
            EngineProcessError: the model process is gone.
            RemotePredictionError: the prediction raised in the model process.
            TimeoutError: no answer within ``timeout`` seconds.
        """
        number, future = self._send(texts)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            with self._lock:
                self._waiting.pop(number, None)
            raise

    def describe(self) -> dict:
        return dict(self._info)

    def warm_up(self) -> None:
        """Nothing to do: the child warmed up before it reported ready."""

    def close(self) -> None:
        self._outbox.put(None)
        self._conn.close()  # the child sees end-of-file and exits
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


Passes = Callable[[list[str]], Iterable[tuple[list[int], list]]]


def answer(passes: Passes, requests: list[tuple[int, list[str]]], reply: Callable[[list[tuple]], None]) -> None:
    """Predict every request's texts together, pass by pass, and ``reply`` with
    ``(number, ok, results or error)`` for each request as soon as its last text is scored.

    ``passes(texts)`` yields ``(indices, results)`` per forward pass. When the shared prediction
    fails, the requests not yet answered are predicted one by one, so that a bad request fails
    without the others.
    """
    texts = [t for _, request_texts in requests for t in request_texts]
    owner = [r for r, (_, request_texts) in enumerate(requests) for _ in request_texts]
    first = list(itertools.accumulate((len(t) for _, t in requests), initial=0))
    results: list[list] = [[None] * len(request_texts) for _, request_texts in requests]
    left = [len(request_texts) for _, request_texts in requests]
    empty = [(number, True, []) for number, request_texts in requests if not request_texts]
    if empty:
        reply(empty)
    try:
        for indices, scored in passes(texts):
            ready = []
            for i, result in zip(indices, scored, strict=True):
                r = owner[i]
                results[r][i - first[r]] = result
                left[r] -= 1
                if not left[r]:
                    ready.append((requests[r][0], True, results[r]))
            if ready:
                reply(ready)
    except Exception as e:
        unanswered = [request for request, n in zip(requests, left, strict=True) if n]
        if len(requests) > 1:
            for request in unanswered:
                answer(passes, [request], reply)
            return
        log.exception("prediction failed in the model process")
        reply([(requests[0][0], False, f"{type(e).__name__}: {e}")])


def serve(conn: Connection) -> None:
    """The child: load the configured predictor, report ready, then batch and answer the worker's
    requests until it goes."""
    config: Config = conn.recv()
    try:
        import torch

        from model_api.predictor import load_predictor
        from model_api.wsgi import quiet_torch_logs, torch_threads

        quiet_torch_logs()
        torch.set_num_threads(torch_threads(config))
        predictor = load_predictor(config)
        predictor.warm_up()
    except Exception as e:
        log.exception("the model process could not load the model")
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    conn.send(("ok", predictor.describe()))
    sending = threading.Lock()  # the engine switch reports from a thread of its own

    def send(message: tuple) -> None:
        with sending:
            conn.send(message)

    # A new engine (the compiled one replacing the fast-starting one): the worker's /model says so.
    predictor.on_engine_change = lambda: send(([], predictor.describe()))
    waiting = BudgetQueue()

    def read() -> None:
        while True:
            try:
                for request in conn.recv():  # all the requests the worker had queued
                    waiting.put(request)
            except (EOFError, OSError):
                waiting.put(None)  # the worker is gone
                return

    threading.Thread(target=read, name="worker-requests", daemon=True).start()
    service = config.service
    cost = PassCost()
    assembled = Assembler(lambda replies: send((replies, None)))
    while True:
        most = texts_within(service.latency_budget_ms / 1000, cost.seconds_per_text, service.micro_batch_max)
        batch = waiting.take(most, service.micro_batch_wait_ms / 1000, full_texts=service.micro_batch_max)
        if batch is None:
            return
        started = time.perf_counter()
        answer(predictor.predict_passes, batch, assembled.reply)
        seconds = time.perf_counter() - started
        texts = sum(len(texts) for _, texts in batch)
        cost.observe(texts, seconds)
        send(([], (texts, seconds)))


class Assembler:
    """Puts the answers of a large request's slices (see :func:`model_api.batching.shape_batch`)
    back together: replies for the request once all its texts are scored, or when a slice failed."""

    def __init__(self, reply: Callable[[list[tuple]], None]) -> None:
        self._reply = reply
        self._open: dict[int, tuple[list, list[int]]] = {}  # number -> (results, [texts left])
        self._failed: set[int] = set()

    def reply(self, replies: list[tuple]) -> None:
        """Take ``answer``'s replies for slices, keyed ``(number, start, end, total)``."""
        whole = []
        for (number, offset, end, total), ok, payload in replies:
            if number in self._failed:
                if end >= total:
                    self._failed.discard(number)
                continue
            if not ok:
                self._open.pop(number, None)
                whole.append((number, False, payload))
                if end < total:
                    self._failed.add(number)  # its later slices are dropped
                continue
            results, left = self._open.setdefault(number, ([None] * total, [total]))
            results[offset : offset + len(payload)] = payload
            left[0] -= len(payload)
            if left[0] <= 0:
                del self._open[number]
                whole.append((number, True, results))
        if whole:
            self._reply(whole)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Connection(int(sys.argv[1])))
    os._exit(0)
