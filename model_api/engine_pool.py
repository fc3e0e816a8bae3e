"""Several model processes behind one predictor: each request goes to the least busy one, and a
large request is shared among them.

On a few cores, one single-threaded model process per core scores more than one model process
using every core, once the HTTP work shares the cores: a forward pass on several threads waits
at each of its barriers for whichever thread the HTTP work preempted (docs/serving.md,
"Workers and model processes"). With a pool in each worker, every connection reaches every model process, so one
client alone still gets all the cores: a ``/predict/batch`` of at least :data:`SPLIT_AT` texts is
cut into one slice per model process, and smaller requests go to the process with the fewest
texts waiting. A model process that died or hung is restarted by its own
:class:`~model_api.engine_process.PredictorProcess`; meanwhile the others take its requests.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from model_api.engine_process import EngineProcessError, Pending, PredictorProcess
from sentiment.config import Config

SPLIT_AT = 64  # requests of at least this many texts are shared among the model processes


class EnginePool:
    """``size`` model processes (:class:`PredictorProcess`), started together, as one predictor.

    Raises:
        EngineProcessError: (from the constructor) a model process did not start.
    """

    def __init__(self, config: Config, size: int, start_timeout: float = 900.0) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one model process, got {size}")
        self.timeout: float = config.service.timeout_seconds
        with ThreadPoolExecutor(size) as starting:  # each loads the model: start them side by side
            futures = [starting.submit(PredictorProcess, config, start_timeout) for _ in range(size)]
        members, failed = [], None
        for future in futures:
            try:
                members.append(future.result())
            except EngineProcessError as e:
                failed = e
        if failed is not None:
            for member in members:
                member.close()
            raise failed
        self.members: list[PredictorProcess] = members
        self._waiting = [0] * size  # texts sent to each member and not yet answered
        self._lock = threading.Lock()
        self._turn = itertools.count()

    @property
    def on_batch(self) -> Callable[[int, float], None] | None:
        """Called with (texts, seconds) after each prediction in any model process."""
        return self.members[0].on_batch

    @on_batch.setter
    def on_batch(self, callback: Callable[[int, float], None] | None) -> None:
        for member in self.members:
            member.on_batch = callback

    def _serving(self) -> list[int]:
        """The members that are up, least busy first (ties: in turn)."""
        up = [i for i, m in enumerate(self.members) if m.health()["status"] == "ok"]
        turn = next(self._turn)
        with self._lock:
            return sorted(up, key=lambda i: (self._waiting[i], (i - turn) % len(self.members)))

    def _send(self, member: int, texts: Sequence[str]) -> Pending:
        pending = self.members[member].submit(texts)
        with self._lock:
            self._waiting[member] += len(texts)

        def done(_: object) -> None:
            with self._lock:
                self._waiting[member] -= len(texts)

        pending.future.add_done_callback(done)
        return pending

    def pending(self, texts: Sequence[str]) -> list[Pending]:
        """Send ``texts`` and return at once: to the least busy model process, or shared among all
        that are up when there are at least :data:`SPLIT_AT` of them (the parts in order).

        Raises:
            EngineRestarting: no model process is up (all are restarting).
        """
        serving = self._serving()
        if not serving:
            return self.members[0].pending(texts)  # raises why it is down
        parts = len(serving) if len(texts) >= SPLIT_AT else 1
        size = -(-len(texts) // parts)
        return [self._send(member, texts[k * size : (k + 1) * size]) for k, member in enumerate(serving[:parts])]

    def predict(self, texts: Sequence[str], timeout: float | None = None) -> list:
        """Predictions for ``texts`` (see :meth:`pending`), waiting at most ``timeout`` seconds
        (default ``service.timeout_seconds``) for all of them.

        Raises:
            EngineRestarting: no model process is up (all are restarting).
            RemotePredictionError, TimeoutError: as :meth:`PredictorProcess.predict`.
        """
        parts = self.pending(texts)
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)  # one wait for all parts
        return [prediction for part in parts for prediction in part.result(max(0.0, deadline - time.monotonic()))]

    def describe(self) -> dict:
        """The first member's description; while any member still prepares its compiled engine, that
        member's engine and state (so that ``engine`` names the configured precision only when all
        serve it)."""
        infos = [member.describe() for member in self.members]
        pending = [i for i in infos if i.get("engine", i.get("precision")) != i.get("precision")]
        return {**(pending[0] if pending else infos[0]), "engine_processes": len(self.members)}

    def health(self) -> dict:
        """``ok`` while at least one model process is up (the others' states under ``engines``),
        ``degraded`` when none is."""
        states = [member.health() for member in self.members]
        restarts = sum(state.get("restarts", 0) for state in states)
        up = sum(state["status"] == "ok" for state in states)
        if not up:
            return {"status": "degraded", "reason": states[0].get("reason", "restarting"), "restarts": restarts}
        health = {"status": "ok", "restarts": restarts}
        if up < len(states):
            health["engines"] = f"{up} of {len(states)} up; " + "; ".join(
                s["reason"] for s in states if s["status"] != "ok" and "reason" in s
            )
        return health

    def warm_up(self) -> None:
        """Nothing to do: each model process warmed up before it reported ready."""

    def in_flight(self) -> int:
        """Requests sent to the model processes and not yet answered."""
        return sum(member.in_flight() for member in self.members)

    def close(self) -> None:
        for member in self.members:
            member.close()
