"""The model in a process of its own, so that forward passes never wait for the request threads.

Inside one worker, the request threads (HTTP, Flask, JSON) and the model share one interpreter
lock. A compiled forward pass is hundreds of kernel calls, and after each one the model thread
must win the lock back from whichever request thread holds it (measured in
docs/performance.md, "Design choices, measured"). With ``service.engine_process = true`` each
worker starts one child process that loads the predictor and answers its calls over a socket pair;
the worker keeps the HTTP work.

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
``describe``, ``health``, ``warm_up``) and reports each prediction's size and time to ``on_batch``.
It also supervises the child: when the child dies (a crash, SIGKILL, the OOM killer) the calls
waiting on it fail at once with :class:`EngineRestarting` (the service answers 503 with
``Retry-After``), the reason (exit code or signal) is logged, ``health()`` says "degraded", and a
new child with the same configuration starts after ``service.engine_restart_seconds`` (doubling
while starts fail, up to 30 s). A watchdog pings the child about once a second (an empty request); a child that answers
nothing for ``service.engine_watchdog_seconds`` while something waits on it (hung, or stopped) is
killed and restarted the same way.
"""

from __future__ import annotations

import itertools
import logging
import os
import queue
import signal
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
from model_api.interface import ModelUnavailable
from sentiment.config import Config
from sentiment.logs import setup_logging

log = logging.getLogger(__name__)

# Restart delays double while starts fail, up to this; a child that served this long resets them.
MAX_RESTART_SECONDS = 30.0
STABLE_SECONDS = 60.0


class EngineProcessError(ModelUnavailable):
    """The model process failed to start, or exited."""


class EngineRestarting(EngineProcessError):
    """The model process died or hung; a new one is starting."""


class RemotePredictionError(RuntimeError):
    """A prediction raised in the model process (which goes on serving)."""


def exit_reason(returncode: int | None) -> str:
    """``killed by SIGKILL``, ``exited with code 1``: what a child's return code says."""
    if returncode is None:
        return "did not exit"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class _Child:
    """One model process and the two threads that talk to it."""

    def __init__(self, config: Config, start_timeout: float, on_batch: Callable[[int, float], None]) -> None:
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_api.engine_process", str(child.fileno())],
            pass_fds=(child.fileno(),),
            env=env,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.on_batch = on_batch
        self.retry_after = config.service.retry_after_seconds
        self.started = time.monotonic()
        self.last_heard = self.started
        self.exited = threading.Event()
        self.reason = ""  # why it exited, once it has
        self.killed_because = ""  # set by the watchdog before it kills
        self._lock = threading.Lock()  # guards the waiting futures and the exit error
        # Request threads only queue their texts; one thread sends whatever is queued in one
        # message. Sending from each request thread under a lock made them queue on that lock
        # behind the socket writes (docs/performance.md).
        self._outbox: queue.SimpleQueue[tuple[int, list[str] | None] | None] = queue.SimpleQueue()
        self._waiting: dict[int, tuple[Future, float]] = {}
        self._ids = itertools.count()
        self._gone: EngineProcessError | None = None
        self.conn.send(config)
        # Loading and warming up (for compiled engines: compiling) happen in the child.
        if not self.conn.poll(start_timeout):
            self.kill()
            self.close()
            raise EngineProcessError(f"the model process did not start within {start_timeout:.0f} s")
        try:
            status, payload = self.conn.recv()
        except (EOFError, OSError):
            self.conn.close()
            raise EngineProcessError(f"the model process {self._wait_for_exit()} while starting") from None
        if status == "error":
            self.close()
            raise EngineProcessError(f"in the model process: {payload}")
        self.info: dict = payload
        self.last_heard = time.monotonic()
        threading.Thread(target=self._receive, name="model-process-replies", daemon=True).start()
        threading.Thread(target=self._send_queued, name="model-process-requests", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_for_exit(self) -> str:
        try:
            return exit_reason(self.process.wait(timeout=10))
        except subprocess.TimeoutExpired:
            return "stopped answering"

    def _receive(self) -> None:
        """Hand each reply to its caller; when the child is gone, fail every waiting call."""
        while True:
            try:
                replies, batch = self.conn.recv()
            except (EOFError, OSError, TypeError):  # TypeError: close() closed the connection under recv
                break
            self.last_heard = time.monotonic()
            if isinstance(batch, dict):  # the model process changed engine
                self.info = batch
            elif batch is not None and batch[0]:  # a watchdog ping alone is no prediction
                self.on_batch(*batch)
            for number, ok, payload in replies:
                with self._lock:
                    future, _ = self._waiting.pop(number, (None, 0.0))
                if future is None:
                    continue  # its caller gave up waiting
                if ok:
                    future.set_result(payload)
                else:
                    future.set_exception(RemotePredictionError(f"in the model process: {payload}"))
        reason = self._wait_for_exit()
        if self.killed_because:
            reason = f"{reason} ({self.killed_because})"
        gone = EngineRestarting(f"the model process {reason}; a new one is starting", self.retry_after)
        with self._lock:
            self.reason = reason
            self._gone = gone
            waiting, self._waiting = [f for f, _ in self._waiting.values()], {}
        self._outbox.put(None)  # ends the sender
        for future in waiting:
            future.set_exception(gone)
        self.exited.set()

    def _send_queued(self) -> None:
        """Send the queued requests, all that are waiting in one message, until closed."""
        while True:
            queued = take_batch(self._outbox, sys.maxsize, 0.0, lambda _: 1)  # all queued, no waiting
            closed = None in queued
            requests = [r for r in queued if r is not None]
            # (number, None) cancels a request whose caller gave up: one not sent yet is not sent at all.
            cancelled = {number for number, texts in requests if texts is None}
            requests = [r for r in requests if r[1] is None or r[0] not in cancelled]
            try:
                if requests:
                    self.conn.send(requests)
            except OSError:
                gone = EngineRestarting("the model process exited; a new one is starting", self.retry_after)
                for number, _ in requests:
                    with self._lock:
                        future, _ = self._waiting.pop(number, (None, 0.0))
                    if future is not None:
                        future.set_exception(gone)
            if closed:
                return

    def send(self, texts: Sequence[str]) -> tuple[int, Future]:
        future: Future = Future()
        with self._lock:
            if self._gone is not None:
                raise self._gone
            number = next(self._ids)
            self._waiting[number] = (future, time.monotonic())
        self._outbox.put((number, list(texts)))
        return number, future

    def forget(self, number: int) -> None:
        """Drop the caller of request ``number``, and the request itself where the model process
        has not begun it."""
        with self._lock:
            self._waiting.pop(number, None)
        self._outbox.put((number, None))

    def in_flight(self) -> int:
        """Requests sent to the child and not yet answered (nor forgotten)."""
        with self._lock:
            return len(self._waiting)

    def silent_for(self) -> float:
        """Seconds that something has waited on the child while it answered nothing (0 when idle)."""
        with self._lock:
            oldest = min((sent for _, sent in self._waiting.values()), default=None)
        if oldest is None:
            return 0.0
        return time.monotonic() - max(oldest, self.last_heard)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL ends a stopped process too; a reaped one is left alone

    def close(self) -> None:
        self._outbox.put(None)
        self.conn.close()  # the child sees end-of-file and exits
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()


class Pending:
    """Predictions on their way from a model process."""

    def __init__(self, child: _Child, number: int, future: Future) -> None:
        self.child, self.number, self.future = child, number, future

    def result(self, timeout: float) -> list:
        """The predictions, waiting at most ``timeout`` seconds.

        Raises:
            EngineRestarting, RemotePredictionError: as :meth:`PredictorProcess.predict`.
            TimeoutError: no answer in time (the model process forgets the request).
        """
        try:
            return self.future.result(timeout=timeout)
        except TimeoutError:
            self.forget()
            raise

    def forget(self) -> None:
        """Give up waiting: the model process's answer, when it comes, is dropped."""
        self.child.forget(self.number)


class PredictorProcess:
    """A predictor that runs in a child process, which batches the concurrent calls it receives;
    a child that dies or hangs is replaced (see the module docstring).

    Raises:
        EngineProcessError: (from the constructor) the first child did not start.
    """

    def __init__(self, config: Config, start_timeout: float = 900.0) -> None:
        self._config = config
        self._start_timeout = start_timeout
        service = config.service
        self._watchdog = service.engine_watchdog_seconds
        self._first_delay = service.engine_restart_seconds
        self._delay = self._first_delay
        self.retry_after = service.retry_after_seconds
        self.timeout: float = service.timeout_seconds
        # Called with (texts, seconds) after each prediction in the model process.
        self.on_batch: Callable[[int, float], None] | None = None
        self.restarts = 0
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._degraded = ""  # why, while there is no child to ask
        self._child = self._start()
        self._supervisor = threading.Thread(target=self._supervise, name="model-process-supervisor", daemon=True)
        self._supervisor.start()

    def _start(self) -> _Child:
        return _Child(self._config, self._start_timeout, self._report_batch)

    def _report_batch(self, texts: int, seconds: float) -> None:
        if self.on_batch is not None:
            self.on_batch(texts, seconds)

    @property
    def alive(self) -> bool:
        """Whether the current child is running."""
        return self._child.process.poll() is None

    @property
    def pid(self) -> int:
        """The current child's process id."""
        return self._child.pid

    def _supervise(self) -> None:
        """Restart the child when it exits; kill it when it has hung (the watchdog)."""
        tick = min(1.0, self._watchdog / 4) if self._watchdog else 1.0
        ping: Future | None = None
        while not self._closed.is_set():
            child = self._child
            if child.exited.wait(tick):
                if self._closed.is_set():
                    return
                self._restart(child)
                ping = None
                continue
            if not self._watchdog:
                continue
            if ping is None or ping.done():
                try:  # an empty request: the child's serving loop answers it at once when healthy
                    ping = child.send([])[1]
                except EngineProcessError:
                    continue
            silent = child.silent_for()
            if silent > self._watchdog:
                child.killed_because = f"by the watchdog: no answer for {silent:.1f} s"
                log.error(
                    "the model process (pid %d) answered nothing for %.1f s with work waiting "
                    "(service.engine_watchdog_seconds = %g); killing it",
                    child.pid,
                    silent,
                    self._watchdog,
                )
                child.kill()

    def _restart(self, dead: _Child) -> None:
        if time.monotonic() - dead.started > STABLE_SECONDS:
            self._delay = self._first_delay
        with self._lock:
            self._degraded = f"the model process {dead.reason}; restarting"
        log.error(
            "the model process (pid %d) %s after %.0f s; starting a new one in %.1f s",
            dead.pid,
            dead.reason,
            time.monotonic() - dead.started,
            self._delay,
        )
        dead.close()
        began = time.monotonic()
        while not self._closed.wait(self._delay):
            self._delay = min(MAX_RESTART_SECONDS, self._delay * 2)
            try:
                child = self._start()
            except EngineProcessError as e:
                with self._lock:
                    self._degraded = f"the model process {dead.reason}; restarting failed: {e}"
                log.error("restarting the model process failed (%s); trying again in %.1f s", e, self._delay)
                continue
            if self._closed.is_set():  # closed while this one started
                child.close()
                return
            with self._lock:
                self._child = child
                self._degraded = ""
                self.restarts += 1
            log.warning(
                "the model process is back (pid %d), %.1f s after the last one %s",
                child.pid,
                time.monotonic() - began,
                dead.reason,
            )
            return

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list:
        """Predictions for ``texts``, batched in the model process with concurrent calls.

        Raises:
            EngineRestarting: the model process is gone; a new one is starting.
            RemotePredictionError: the prediction raised in the model process.
            TimeoutError: no answer within ``timeout`` seconds (default ``service.timeout_seconds``).
        """
        pending = self.submit(texts)
        return pending.result(self.timeout if timeout is None else timeout)

    def submit(self, texts: Sequence[str]) -> Pending:
        """Send ``texts`` to the model process and return at once; :meth:`Pending.result` waits.

        Raises:
            EngineRestarting: the model process is gone; a new one is starting.
        """
        with self._lock:
            if self._degraded:
                raise EngineRestarting(self._degraded, self.retry_after)
            child = self._child
        number, future = child.send(texts)
        return Pending(child, number, future)

    def pending(self, texts: Sequence[str]) -> list[Pending]:
        """:meth:`submit`, as a list of parts (one), as :meth:`EnginePool.pending`."""
        return [self.submit(texts)]

    def describe(self) -> dict:
        return dict(self._child.info)

    def health(self) -> dict:
        """``ok``, or ``degraded`` with the reason while the child is restarting."""
        with self._lock:
            degraded, child = self._degraded, self._child
        if not degraded and (child.exited.is_set() or child.process.poll() is not None):
            # Gone, and the reply thread may not have seen it yet.
            degraded = f"the model process {child.reason or exit_reason(child.process.returncode)}; restarting"
        if degraded:
            return {"status": "degraded", "reason": degraded, "restarts": self.restarts}
        return {"status": "ok", "restarts": self.restarts}

    def warm_up(self) -> None:
        """Nothing to do: the child warmed up before it reported ready."""

    def in_flight(self) -> int:
        """Requests sent to the model process and not yet answered (a model being retired waits for 0)."""
        with self._lock:
            child = self._child
        return child.in_flight()

    def close(self) -> None:
        self._closed.set()
        self._child.close()
        self._supervisor.join(timeout=10)


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
        if len(empty) == len(requests):
            return  # nothing to score (the worker's watchdog pings with an empty request)
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
        from model_api.torch_setup import quiet_torch_logs, torch_threads

        quiet_torch_logs()
        torch.set_num_threads(torch_threads(config))
        predictor = load_predictor(config)
        predictor.warm_up()
    except Exception as e:
        log.exception("the model process could not load the model")
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    try:
        conn.send(("ok", predictor.describe()))
    except OSError:  # the worker went while this loaded (stopped during its start): nothing to serve
        return
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
                for number, texts in conn.recv():  # all the requests the worker had queued
                    if texts is None:
                        waiting.cancel(number)  # its caller is gone
                    else:
                        waiting.put((number, texts))
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
    setup_logging()
    serve(Connection(int(sys.argv[1])))
    os._exit(0)
