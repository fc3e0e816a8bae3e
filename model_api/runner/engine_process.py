"""The model in a process of its own, so that forward passes never wait for the request threads.

Inside one worker, the request threads (HTTP, Flask, JSON) and the model share one interpreter
lock. A compiled forward pass is hundreds of kernel calls, and after each one the model thread
must win the lock back from whichever request thread holds it (measured in
docs/performance.md, "Design choices, measured"). With ``service.engine_process = true`` each
worker starts a child process (:mod:`model_api.runner.model_process`) that loads the predictor and
answers its calls over a socket pair; the worker keeps the HTTP work.

Every request thread of the worker queues its texts at once, tagged with a number, and one sender
thread sends whatever is queued in one message (request threads never wait on the socket); the
model process gathers them into micro-batches shaped for a latency budget. The messages are typed
(:mod:`model_api.runner.messages`).

:class:`ModelProcess` is the worker's handle on one model process: it starts it, sends the
requests and hands each reply to its caller (:class:`Pending`); when the process is gone, every
call waiting on it fails at once with :class:`EngineRestarting`. Restarting it, and the watchdog,
are :class:`model_api.runner.pool.PredictorProcess`'s business.
"""

from __future__ import annotations

import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from multiprocessing.connection import Connection
from pathlib import Path

from model_api.runner.batching import take_batch
from model_api.runner.interface import ModelUnavailable
from model_api.runner.messages import Batch, Cancel, EngineChanged, Failed, Ready, Replies, Reply, Request
from sentiment.config import Config


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


class ModelProcess:
    """One model process and the two threads that talk to it (from :meth:`start` on)."""

    def __init__(self, config: Config, start_timeout: float, on_batch: Callable[[int, float], None]) -> None:
        self.config = config
        self.start_timeout = start_timeout
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
        self._outbox: queue.SimpleQueue[Request | Cancel | None] = queue.SimpleQueue()
        self._waiting: dict[int, tuple[Future, float]] = {}
        self._ids = itertools.count()
        self._gone: EngineProcessError | None = None
        self.info: dict = {}

    def start(self) -> ModelProcess:
        """Start the process, wait until it has loaded the model, then start the threads that talk to it.

        Raises:
            EngineProcessError: it failed, exited or did not start within ``start_timeout`` seconds.
        """
        parent, child = socket.socketpair()
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_api.runner.model_process", str(child.fileno())],
            pass_fds=(child.fileno(),),
            env=env,
        )
        child.close()
        self.conn = Connection(parent.detach())
        self.started = time.monotonic()
        self.conn.send(self.config)
        self.info = self._wait_until_ready(self.start_timeout)
        self.last_heard = time.monotonic()
        threading.Thread(target=self._receive, name="model-process-replies", daemon=True).start()
        threading.Thread(target=self._send_queued, name="model-process-requests", daemon=True).start()
        return self

    def _wait_until_ready(self, start_timeout: float) -> dict:
        """The child's description once it has loaded and warmed up (for compiled engines: compiled).

        Raises:
            EngineProcessError: it failed, exited or did not start within ``start_timeout`` seconds.
        """
        if not self.conn.poll(start_timeout):
            self.kill()
            self.close()
            raise EngineProcessError(f"the model process did not start within {start_timeout:.0f} s")
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            self.conn.close()
            raise EngineProcessError(f"the model process {self._wait_for_exit()} while starting") from None
        match message:
            case Ready(info):
                return info
            case Failed(why):
                self.close()
                raise EngineProcessError(f"in the model process: {why}")
        self.close()
        raise EngineProcessError(f"the model process answered {type(message).__name__} while starting")

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
                message = self.conn.recv()
            except (EOFError, OSError, TypeError):  # TypeError: close() closed the connection under recv
                break
            self.last_heard = time.monotonic()
            match message:
                case Replies(items):
                    self._settle(items)
                case Batch(texts, seconds):
                    if texts:  # a watchdog ping alone is no prediction
                        self.on_batch(texts, seconds)
                case EngineChanged(info):
                    self.info = info
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

    def _settle(self, replies: list[Reply]) -> None:
        """Hand each reply to the caller waiting for it (one that gave up waiting has none)."""
        for number, ok, payload in replies:
            with self._lock:
                future, _ = self._waiting.pop(number, (None, 0.0))
            if future is None:
                continue
            if ok:
                future.set_result(payload)
            else:
                future.set_exception(RemotePredictionError(f"in the model process: {payload}"))

    def _send_queued(self) -> None:
        """Send the queued requests, all that are waiting in one message, until closed."""
        while True:
            queued = take_batch(self._outbox, sys.maxsize, 0.0, lambda _: 1)  # all queued, no waiting
            closed = None in queued
            # A request whose caller gave up before it was sent is not sent at all.
            cancelled = {m.number for m in queued if type(m) is Cancel}
            messages = [m for m in queued if type(m) is Cancel or (m is not None and m.number not in cancelled)]
            try:
                if messages:
                    self.conn.send(messages)
            except OSError:
                gone = EngineRestarting("the model process exited; a new one is starting", self.retry_after)
                for message in messages:
                    with self._lock:
                        future, _ = self._waiting.pop(message.number, (None, 0.0))
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
        self._outbox.put(Request(number, list(texts)))
        return number, future

    def forget(self, number: int) -> None:
        """Drop the caller of request ``number``, and the request itself where the model process
        has not begun it."""
        with self._lock:
            self._waiting.pop(number, None)
        self._outbox.put(Cancel(number))

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

    def __init__(self, child: ModelProcess, number: int, future: Future) -> None:
        self.child, self.number, self.future = child, number, future

    def forget(self) -> None:
        """Give up waiting: the model process's answer, when it comes, is dropped."""
        self.child.forget(self.number)
