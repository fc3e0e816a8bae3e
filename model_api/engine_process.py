"""The model in a process of its own, so that forward passes never wait for the request threads.

Inside one worker, the request threads (HTTP, Flask, JSON) and the model share one interpreter
lock. A compiled forward pass is hundreds of kernel calls, and after each one the model thread
must win the lock back from whichever request thread holds it. In the single-tweet load test the
worker answered 464.7 requests/s with the model in its own process against 322.8 without. With
``service.engine_process = true`` each worker starts one child process that loads the predictor
and answers its calls over a socket pair; the worker keeps the HTTP work.

The parent side, :class:`PredictorProcess`, has the predictor interface (``predict``,
``describe``, ``warm_up``), so the app and its micro-batcher use it unchanged.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from sentiment.config import Config

log = logging.getLogger(__name__)


class EngineProcessError(RuntimeError):
    """The model process failed to start, or exited."""


class RemotePredictionError(RuntimeError):
    """A prediction raised in the model process (which goes on serving)."""


class PredictorProcess:
    """A predictor that runs in a child process; calls are serialised, one batch at a time."""

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
        self._lock = threading.Lock()
        self._conn.send(config)
        # Loading and warming up (for compiled engines: compiling) happen in the child.
        if not self._conn.poll(start_timeout):
            self.close()
            raise EngineProcessError(f"the model process did not start within {start_timeout:.0f} s")
        self._info = self._reply(EngineProcessError)

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def _exited(self) -> EngineProcessError:
        try:
            code = self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            code = None
        return EngineProcessError(f"the model process exited with code {code}")

    def _reply(self, failure: type[RuntimeError]):
        try:
            status, payload = self._conn.recv()
        except (EOFError, OSError):
            raise self._exited() from None
        if status == "error":
            raise failure(f"in the model process: {payload}")
        return payload

    def predict(self, texts: Sequence[str]) -> list:
        with self._lock:
            try:
                self._conn.send(list(texts))
            except OSError:
                raise self._exited() from None
            return self._reply(RemotePredictionError)

    def describe(self) -> dict:
        return dict(self._info)

    def warm_up(self) -> None:
        """Nothing to do: the child warmed up before it reported ready."""

    def close(self) -> None:
        self._conn.close()  # the child sees end-of-file and exits
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


def serve(conn: Connection) -> None:
    """The child: load the configured predictor, report ready, then answer until the parent goes."""
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
    while True:
        try:
            texts = conn.recv()
        except (EOFError, OSError):
            return  # the worker is gone
        try:
            reply = ("ok", predictor.predict(texts))
        except Exception as e:  # the worker hands it to the callers of this batch
            log.exception("prediction failed in the model process")
            reply = ("error", f"{type(e).__name__}: {e}")
        conn.send(reply)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(Connection(int(sys.argv[1])))
    os._exit(0)
