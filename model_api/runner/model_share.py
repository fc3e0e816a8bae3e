"""How the workers of one service follow a model swap: a folder they share.

``python -m model_api`` with several worker processes (granian's, each with its own
model processes) creates the folder and names it in :data:`SHARE_ENV` before the workers start.
The worker that takes ``POST /admin/model`` swaps its own model first (loaded, checked: a refusal
stops there, and no other worker loads anything); then it writes ``model.json`` (the model, a
generation number), and every other worker, which looks at that file's modification time every
:data:`FOLLOW_SECONDS` in a thread of its own (never on the request path), swaps to it. Each worker
writes ``worker-<pid>.json`` with the generation it serves, so that the answer to the POST can say
when all of them do; a worker started later (a respawn) reads ``model.json`` and loads that model.
While a roll-out asks to be routed around, a ``switching`` file makes every worker's ``/health``
answer 503. A lock file keeps two swaps from running at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from model_api.runner.swap import ModelRefused, ModelSlot, SwapBusy
from sentiment.config import ENV_PREFIX, Config

log = logging.getLogger(__name__)

SHARE_ENV = ENV_PREFIX + "MODEL_SHARE_DIR"
FOLLOW_SECONDS = 0.5
WORKERS_WAIT_SECONDS = 600.0  # how long the POST waits for the other workers to serve the new model


def share_dir() -> Path | None:
    folder = os.environ.get(SHARE_ENV)
    return Path(folder) if folder else None


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)  # readers see the old file or the new one, never half of one


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def initial_model(config: Config, folder: Path | None) -> tuple[Config, int, str | None]:
    """The configuration a starting worker loads: the shared folder's model when a swap happened
    (a respawned worker serves what the others do), with its generation and previous model."""
    target = _read_json(folder / "model.json") if folder else None
    if not target:
        return config, 0, None
    service = dataclasses.replace(config.service, model=target["model"])
    return dataclasses.replace(config, service=service), int(target["generation"]), target.get("previous")


class SharedModel:
    """One worker's side of the shared folder (see the module docstring)."""

    def __init__(self, folder: Path, slot: ModelSlot) -> None:
        self.folder = folder
        self.slot = slot
        self._stop = threading.Event()
        self._seen = self._mtime()
        self.refused: dict | None = None

    def start(self) -> None:
        self.write_status()
        threading.Thread(target=self._follow, name="model-share", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def switching(self) -> bool:
        return (self.folder / "switching").exists()

    @contextlib.contextmanager
    def route_around(self) -> Iterator[None]:
        marker = self.folder / "switching"
        marker.touch()
        try:
            yield
        finally:
            marker.unlink(missing_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Held while one swap runs in this service.

        Raises:
            SwapBusy: another worker is swapping.
        """
        with open(self.folder / "lock", "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise SwapBusy("another worker of this service is swapping the model; try again later") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def swap(self, model: str, workers: int) -> dict:
        """Swap this worker's model, then publish it and wait (up to :data:`WORKERS_WAIT_SECONDS`)
        until ``workers`` workers serve it.

        Raises:
            ModelRefused, SwapBusy: as :meth:`ModelSlot.swap` (nothing published).
        """
        with self.lock():
            target = _read_json(self.folder / "model.json") or {}
            generation = max(self.slot.generation, int(target.get("generation", 0))) + 1
            result = self.slot.swap(model, generation)
            _write_json(
                self.folder / "model.json",
                {"generation": generation, "model": result["model"], "previous": result["previous"]},
            )
            self._seen = self._mtime()
            self.write_status()
            result["workers"] = self.wait_for(generation, workers)
        return result

    def wait_for(self, generation: int, workers: int, timeout: float = WORKERS_WAIT_SECONDS) -> dict:
        """The workers' states once ``workers`` of them serve ``generation`` (or refused it), or at ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.statuses()
            done = [s for s in states if s.get("generation", 0) >= generation or s.get("refused") == generation]
            if len(done) >= workers or time.monotonic() >= deadline:
                serving = sum(s.get("generation", 0) >= generation for s in states)
                return {"serving": serving, "of": workers, "states": states}
            time.sleep(0.2)

    def statuses(self) -> list[dict]:
        states = [_read_json(p) for p in sorted(self.folder.glob("worker-*.json"))]
        return [s for s in states if s and _alive(int(s.get("pid", 0)))]

    def write_status(self) -> None:
        current = self.slot.serving
        status = {"pid": os.getpid(), "generation": self.slot.generation, "version": current.version}
        if self.refused:
            status.update(self.refused)
        _write_json(self.folder / f"worker-{os.getpid()}.json", status)

    def _mtime(self) -> int:
        try:
            return (self.folder / "model.json").stat().st_mtime_ns
        except OSError:
            return 0

    def _follow(self) -> None:
        while not self._stop.wait(FOLLOW_SECONDS):
            self.slot.switching = self.switching()  # read per request (a header), so kept in memory
            mtime = self._mtime()
            if mtime == self._seen:
                continue
            target = _read_json(self.folder / "model.json")
            if not target or int(target["generation"]) <= self.slot.generation:
                self._seen = mtime
                continue
            try:
                self.slot.swap(target["model"], int(target["generation"]))
                self.refused = None
            except SwapBusy:
                continue  # this worker is loading already: look again next time
            except ModelRefused as e:
                log.error("this worker refused the model another worker serves: %s", e)
                self.refused = {"refused": int(target["generation"]), "reason": str(e)}
            self._seen = mtime
            self.write_status()
