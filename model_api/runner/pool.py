"""The model processes of a worker, as the predictor the HTTP layer calls.

:class:`PredictorProcess` is one model process (:class:`~model_api.runner.engine_process.ModelProcess`),
supervised: when it dies (a crash, SIGKILL, the OOM killer) the calls waiting on it fail at once
with :class:`~model_api.runner.engine_process.EngineRestarting` (the service answers 503 with
``Retry-After``), the reason is logged, ``health()`` says "degraded", and a new one with the same
configuration starts after ``service.engine_restart_seconds`` (doubling while starts fail, up to
30 s). A watchdog pings it about once a second (an empty request); one that answers nothing for
``service.engine_watchdog_seconds`` while something waits on it (hung, or stopped) is killed and
restarted the same way.

:class:`EnginePool` is several of them as one predictor: each request goes to the least busy one,
and a large request is shared among them. On a few cores, one single-threaded model process per
core scores more than one model process using every core, once the HTTP work shares the cores: a
forward pass on several threads waits at each of its barriers for whichever thread the HTTP work
preempted (docs/serving.md, "Workers and model processes"). With a pool in each worker, every
connection reaches every model process, so one client alone still gets all the cores: a
``/predict/batch`` of at least :data:`SPLIT_AT` texts is cut into one slice per model process, and
smaller requests go to the process with the fewest texts waiting. A model process that died or
hung is restarted by its own :class:`PredictorProcess`; meanwhile the others take its requests.
A worker always serves a pool (of one model process when ``service.engine_processes`` says one):
the one :class:`~model_api.runner.interface.ServedPredictor` the front waits on.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from model_api.runner.engine_process import EngineProcessError, EngineRestarting, ModelProcess, Pending, exit_reason
from model_api.runner.interface import collect
from sentiment.config import Config

log = logging.getLogger(__name__)

# Restart delays double while starts fail, up to this; a child that served this long resets them.
MAX_RESTART_SECONDS = 30.0
STABLE_SECONDS = 60.0
SPLIT_AT = 64  # requests of at least this many texts are shared among the model processes


class PredictorProcess:
    """A predictor that runs in a child process, which batches the concurrent calls it receives;
    a child that dies or hangs is replaced (see the module docstring).

    Raises:
        EngineProcessError: (from :meth:`start`) the first child did not start.
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
        self._child: ModelProcess | None = None
        self._supervisor: threading.Thread | None = None

    def start(self) -> PredictorProcess:
        """Start the model process and wait until it is ready, then supervise it."""
        self._child = self._start()
        self._supervisor = threading.Thread(target=self._supervise, name="model-process-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def _start(self) -> ModelProcess:
        return ModelProcess(self._config, self._start_timeout, self._report_batch).start()

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

    def _restart(self, dead: ModelProcess) -> None:
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
        return collect(self.pending(texts), self.timeout if timeout is None else timeout)

    def submit(self, texts: Sequence[str]) -> Pending:
        """Send ``texts`` to the model process and return at once (:func:`~model_api.runner.interface.collect` waits).

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
        if self._child is not None:
            self._child.close()
        if self._supervisor is not None:
            self._supervisor.join(timeout=10)


class EnginePool:
    """``size`` model processes (:class:`PredictorProcess`), started together, as one predictor.

    Raises:
        EngineProcessError: (from :meth:`start`) a model process did not start.
    """

    def __init__(self, config: Config, size: int, start_timeout: float = 900.0) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one model process, got {size}")
        self.timeout: float = config.service.timeout_seconds
        self.members = [PredictorProcess(config, start_timeout) for _ in range(size)]
        self._waiting = [0] * size  # texts sent to each member and not yet answered
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def start(self) -> EnginePool:
        """Start the model processes side by side (each loads the model) and wait until all are ready;
        if one fails, stop the others."""
        with ThreadPoolExecutor(len(self.members)) as starting:
            futures = [starting.submit(member.start) for member in self.members]
        failed = None
        for future in futures:
            try:
                future.result()
            except EngineProcessError as e:
                failed = e
        if failed is not None:
            self.close()
            raise failed
        return self

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
        return collect(self.pending(texts), self.timeout if timeout is None else timeout)

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
