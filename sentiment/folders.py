"""Who may write a folder, and which folders ``--start-over`` may delete.

Usage: ``with FolderLock(spool, "relay"): ...``; ``mark_ours(folder)``; ``remove_ours(folder)``

* :class:`FolderLock` is an advisory lock (``fcntl.flock``) on ``<folder>/.lock``, a file that
  records the holder's pid, command and start time. A second writer gets :class:`FolderBusy` at once,
  naming the holder. The kernel releases the lock when its process dies (even by SIGKILL), so a
  stale lock file of a dead process is simply taken over.
* :func:`mark_ours` leaves a marker file (``.tweet-sentiment``) in each folder the project makes;
  :func:`remove_ours` deletes only folders that carry it (or hold nothing but files the project
  writes, for folders made before the marker existed), and never ``/``, the home folder, the
  current folder, the project root or a folder holding any of them.
"""

from __future__ import annotations

import fcntl
import fnmatch
import json
import os
import shutil
import socket
import sys
import time
from pathlib import Path

from sentiment.config import PROJECT_ROOT

LOCK_FILE = ".lock"
MARKER_FILE = ".tweet-sentiment"
# What the project writes into its folders (spool, archive, checkpoint, outputs), for folders
# made before the marker existed.
OUR_NAMES = (
    "seg-*.jsonl",
    ".open.jsonl",
    "_state.json",
    "_complete.json",
    ".*.tmp",
    LOCK_FILE,
    MARKER_FILE,
    "date=*",
    "part-*.parquet",
    "merged-*.parquet",
    "feed-*.parquet",
    "_versions",
    "data",
    ".part-*.crc",
    "_staging",
    "_spark_metadata",
    "_SUCCESS",
    "._SUCCESS.crc",
    "metadata",
    ".metadata.crc",
    "offsets",
    "commits",
    "sources",
    "state",
    "sink_id",
    "spool_id",
    "ticks",
)


class FolderBusy(RuntimeError):
    """Another living process holds the folder's lock; the message names it."""


class UnsafeDelete(RuntimeError):
    """``--start-over`` was asked to delete a folder the project did not make."""


class FolderLock:
    """An exclusive advisory lock on a folder, held until :meth:`release` or the process ends.

    Args:
        folder: the folder to lock (created if missing).
        role: who locks it, for the messages ("relay", "job").
        hint: what a refused second writer should do instead.
    """

    def __init__(self, folder: str | Path, role: str, hint: str = "") -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.role = role
        self.hint = hint
        self._fd: int | None = None

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock or raise :class:`FolderBusy` at once (never waits)."""
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise FolderBusy(self._busy_message()) from None
        holder = {
            "pid": os.getpid(),
            "role": self.role,
            "command": " ".join([Path(sys.executable).name, *sys.argv])[:500],
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(holder) + "\n").encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def _busy_message(self) -> str:
        holder = read_holder(self.folder)
        who = (
            f"pid {holder.get('pid')} on {holder.get('host')} ({holder.get('command')}), since {holder.get('since')}"
            if holder
            else "another process"
        )
        return (
            f"{self.folder} is in use by another {self.role}: {who}. One {self.role} per folder: "
            f"stop that one first{', or ' + self.hint if self.hint else ''}"
        )


def read_holder(folder: str | Path) -> dict:
    """What the lock file of ``folder`` says about its holder (empty when unknown)."""
    try:
        return json.loads((Path(folder) / LOCK_FILE).read_text())
    except (OSError, ValueError):
        return {}


def mark_ours(folder: str | Path, what: str) -> None:
    """Create ``folder`` if needed and mark it as made by the project (``--start-over`` may delete it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / MARKER_FILE
    if not marker.exists():
        marker.write_text(f"{what}, made by tweet-sentiment: --start-over may delete what this folder holds\n")


def is_ours(folder: Path) -> bool:
    """Whether the folder carries the marker, or holds only names the project writes."""
    if (folder / MARKER_FILE).is_file():
        return True
    return all(any(fnmatch.fnmatch(p.name, pattern) for pattern in OUR_NAMES) for p in folder.iterdir())


def check_deletable(folder: str | Path) -> Path:
    """The resolved folder, if ``--start-over`` may delete it.

    Raises:
        UnsafeDelete: for ``/``, the home folder, the current folder, the project root (or a folder
            holding one of them), and for a non-empty folder the project did not make.
    """
    path = Path(folder).expanduser().resolve()
    protected = {Path("/"), Path.home().resolve(), Path.cwd().resolve(), PROJECT_ROOT.resolve()}
    for p in protected:
        if path == p or path in p.parents:
            raise UnsafeDelete(
                f"refusing to delete {folder} ({path}): it is or holds {p}. Give the pipeline folders of their own"
            )
    if path.is_dir() and not is_ours(path):
        raise UnsafeDelete(
            f"refusing to delete {path}: it was not made by tweet-sentiment (no {MARKER_FILE} file in it) and "
            "holds other files. Delete it yourself if you mean to, or choose another folder"
        )
    return path


def remove_ours(folder: str | Path, keep: tuple[str, ...] = (LOCK_FILE,)) -> None:
    """Delete what a project folder holds (all but ``keep``, the lock a caller holds), after
    :func:`check_deletable`. The folder itself stays when it holds a kept file."""
    path = check_deletable(folder)
    if not path.is_dir():
        return
    for child in path.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)
    if not any(path.iterdir()):
        path.rmdir()
