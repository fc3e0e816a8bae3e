"""The model process: loads the configured model, then batches and answers its worker's requests.

Usage: started by its worker (:class:`model_api.runner.engine_process.ModelProcess`) as
``python -m model_api.runner.model_process FD``, where FD is its end of a socket pair.

The worker sends every request its threads queued in one message (:mod:`model_api.runner.messages`);
this process queues them and, as soon as a prediction ends, takes what is waiting into the next
one (waiting at most ``service.micro_batch_wait_ms`` after the first for company), so the model
never waits for the worker to gather a batch. A micro-batch is shaped for a latency budget
(:class:`model_api.runner.batching.BudgetQueue`): it takes only as many texts as its prediction scores in
``service.latency_budget_ms`` at the measured cost per text (and at most
``service.micro_batch_max``), single-text requests first; a larger request is cut across
micro-batches and answered when its last slice is scored (:class:`Assembler`). Each request is
answered as soon as the forward pass holding its last text ends, not when the whole batch is done.
A batch whose prediction fails is retried request by request, so one bad request fails alone.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection

from model_api.runner.batching import BudgetQueue, PassCost, texts_within
from model_api.runner.messages import Batch, Cancel, EngineChanged, Failed, Ready, Replies, Reply, Request
from sentiment.config import Config
from sentiment.logs import setup_logging

log = logging.getLogger(__name__)

Passes = Callable[[list[str]], Iterable[tuple[list[int], list]]]


def answer(passes: Passes, requests: list[Request], reply: Callable[[list[Reply]], None]) -> None:
    """Predict every request's texts together, pass by pass, and ``reply`` with a :class:`Reply`
    for each request as soon as its last text is scored.

    ``passes(texts)`` yields ``(indices, results)`` per forward pass. When the shared prediction
    fails, the requests not yet answered are predicted one by one, so that a bad request fails
    without the others.
    """
    texts = [t for _, request_texts in requests for t in request_texts]
    owner = [r for r, (_, request_texts) in enumerate(requests) for _ in request_texts]
    first = list(itertools.accumulate((len(t) for _, t in requests), initial=0))
    results: list[list] = [[None] * len(request_texts) for _, request_texts in requests]
    left = [len(request_texts) for _, request_texts in requests]
    empty = [Reply(number, True, []) for number, request_texts in requests if not request_texts]
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
                    ready.append(Reply(requests[r][0], True, results[r]))
            if ready:
                reply(ready)
    except Exception as e:
        unanswered = [request for request, n in zip(requests, left, strict=True) if n]
        if len(requests) > 1:
            for request in unanswered:
                answer(passes, [request], reply)
            return
        log.exception("prediction failed in the model process")
        reply([Reply(requests[0][0], False, f"{type(e).__name__}: {e}")])


class Assembler:
    """Puts the answers of a large request's slices (see :func:`model_api.runner.batching.shape_batch`)
    back together: replies for the request once all its texts are scored, or when a slice failed."""

    def __init__(self, reply: Callable[[list[Reply]], None]) -> None:
        self._reply = reply
        self._open: dict[int, tuple[list, list[int]]] = {}  # number -> (results, [texts left])
        self._failed: set[int] = set()

    def reply(self, replies: list[Reply]) -> None:
        """Take ``answer``'s replies for slices, keyed ``(number, start, end, total)``."""
        whole = []
        for (number, offset, end, total), ok, payload in replies:
            if number in self._failed:
                if end >= total:
                    self._failed.discard(number)
                continue
            if not ok:
                self._open.pop(number, None)
                whole.append(Reply(number, False, payload))
                if end < total:
                    self._failed.add(number)  # its later slices are dropped
                continue
            results, left = self._open.setdefault(number, ([None] * total, [total]))
            results[offset : offset + len(payload)] = payload
            left[0] -= len(payload)
            if left[0] <= 0:
                del self._open[number]
                whole.append(Reply(number, True, results))
        if whole:
            self._reply(whole)


def load(config: Config):
    """The configured model with its engine, warmed up, on this process's share of the cores."""
    from model_api.model.predictor import SentimentPredictor
    from model_api.model.torch_setup import model_process_torch

    model_process_torch(config)
    predictor = SentimentPredictor.from_config(config)
    predictor.warm_up()
    return predictor


def read_requests(conn: Connection, waiting: BudgetQueue) -> None:
    """Queue the worker's requests (all it had queued come in one message) until it goes."""
    while True:
        try:
            for message in conn.recv():
                match message:
                    case Request():
                        waiting.put(message)
                    case Cancel(number):
                        waiting.cancel(number)  # its caller is gone
        except (EOFError, OSError):
            waiting.put(None)  # the worker is gone
            return


def serve(conn: Connection) -> None:
    """Load the configured predictor, report ready, then batch and answer the worker's requests
    until it goes."""
    config: Config = conn.recv()
    try:
        predictor = load(config)
    except Exception as e:
        log.exception("the model process could not load the model")
        conn.send(Failed(f"{type(e).__name__}: {e}"))
        return
    try:
        conn.send(Ready(predictor.describe()))
    except OSError:  # the worker went while this loaded (stopped during its start): nothing to serve
        return
    sending = threading.Lock()  # the engine switch reports from a thread of its own

    def send(message: tuple) -> None:
        with sending:
            conn.send(message)

    # A new engine (the compiled one replacing the fast-starting one): the worker's /model says so.
    predictor.engine.on_change = lambda: send(EngineChanged(predictor.describe()))
    waiting = BudgetQueue()
    threading.Thread(target=read_requests, args=(conn, waiting), name="worker-requests", daemon=True).start()
    service = config.service
    cost = PassCost()
    assembled = Assembler(lambda replies: send(Replies(replies)))
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
        send(Batch(texts, seconds))


if __name__ == "__main__":
    setup_logging()
    serve(Connection(int(sys.argv[1])))
    os._exit(0)
