"""A durable, append-only log of relayed lines on disk: the replayable source of the Spark job.

Usage: ``with Spool(folder) as spool: spool.append([Record(line, ...)])``

Every line the relay accepts gets the next offset and is written, inside a JSON envelope, to an
open segment (``.open.jsonl``, hidden from Spark); the segment is flushed on every append and, once
it holds ``segment_records`` lines or is ``segment_seconds`` old, fsynced and renamed into place as
``seg-<first offset>.jsonl``. Spark's file source reads sealed segments only (a rename is atomic),
records which ones each micro-batch read in its checkpoint, and moves the segments of committed
batches to the archive folder (``cleanSource=archive``). So a restarted query re-reads exactly what
it had not committed, and a relay killed at any point loses nothing it accepted: on the next open,
the open segment is sealed (a torn last line is cut off) and offsets go on from the last one.

Envelope fields: ``offset`` (int), ``at`` (epoch seconds when accepted), ``line`` (the record as
received, a JSON object for tweets), ``error`` (why the relay could not take the line as is:
undecodable bytes, too long, a malformed CSV row; the job quarantines it with that reason),
``src`` and ``seq`` (which source and how far into it, so a replay resumes where it stopped).

Retention: archived segments are deleted once older than ``retention_hours`` or beyond
``retention_bytes`` (oldest first). Unread segments are never deleted; beyond ``max_pending_bytes``
of them, :meth:`Spool.append` raises :class:`SpoolFull` (a replay waits, a live relay buffers).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

OPEN_SEGMENT = ".open.jsonl"
STATE_FILE = "_state.json"
COMPLETE_FILE = "_complete.json"
SEGMENT_GLOB = "seg-*.jsonl"


class SpoolError(RuntimeError):
    """The spool cannot take more lines (disk full, not writable); the message says what to do."""


class SpoolFull(SpoolError):
    """More unread lines are pending than ``max_pending_bytes`` allows; try again once the job reads."""


@dataclass(frozen=True)
class Record:
    """One accepted line. ``error`` is set when the line is kept only to be quarantined."""

    line: str
    error: str | None = None
    src: str | None = None
    seq: int | None = None


def archive_dir(spool: Path) -> Path:
    """Where the job moves the segments it has committed (a sibling, so Spark never lists it)."""
    return spool.with_name(spool.name + "-done")


def segment_name(first_offset: int) -> str:
    return f"seg-{first_offset:012d}.jsonl"


class Spool:
    """The relay's side of the log: append, seal, recover, prune. One writer per folder."""

    def __init__(
        self,
        folder: str | Path,
        segment_records: int = 1000,
        segment_seconds: float = 0.5,
        max_pending_bytes: int = 2 << 30,
        retention_hours: float = 24.0,
        retention_bytes: int = 1 << 30,
        fsync: bool = True,
    ) -> None:
        self.folder = Path(folder)
        self.archive = archive_dir(self.folder)
        self.segment_records = segment_records
        self.segment_seconds = segment_seconds
        self.max_pending_bytes = max_pending_bytes
        self.retention_hours = retention_hours
        self.retention_bytes = retention_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._file = None
        self._open_count = 0
        self._open_first = 0
        self._opened_at = 0.0
        self.next_offset = 0
        self.last: dict | None = None  # the newest record accepted (after recovery: the newest on disk)

    # -- opening and recovery -------------------------------------------------------------------

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        """Create the folders, seal a segment left open by a killed relay, find the next offset."""
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.archive.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SpoolError(f"cannot create the spool folder {self.folder}: {e}") from None
        state = self._read_state()
        self.next_offset = int(state.get("next_offset", 0))
        self.last = state.get("last")
        leftover = self.folder / OPEN_SEGMENT
        if leftover.exists():
            records = _read_complete_records(leftover)
            if records:
                self._note_last(records[-1])
                _write_atomic(leftover, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
                leftover.rename(self.folder / segment_name(records[0]["offset"]))
                log.info("sealed %d line(s) left open by an earlier relay", len(records))
            else:
                leftover.unlink()
        newest = max(self.folder.glob(SEGMENT_GLOB), default=None)
        if newest is not None:
            records = _read_complete_records(newest)
            if records:
                self._note_last(records[-1])
        self._save_state()

    def _note_last(self, record: dict) -> None:
        if record["offset"] + 1 > self.next_offset:
            self.next_offset = record["offset"] + 1
            self.last = {k: record.get(k) for k in ("offset", "src", "seq")}

    # -- writing --------------------------------------------------------------------------------

    def append(self, records: Iterable[Record], now: float | None = None) -> int:
        """Accept records: give each the next offset and write them to the open segment.

        Returns the offset after the last one. Raises :class:`SpoolFull` when too much is unread
        and :class:`SpoolError` when the disk refuses the write.
        """
        records = list(records)
        if not records:
            return self.next_offset
        now = time.time() if now is None else now
        with self._lock:
            if self.max_pending_bytes and self.pending_bytes() > self.max_pending_bytes:
                raise SpoolFull(
                    f"{self.folder} holds more than {self.max_pending_bytes:,} bytes that the job has not read "
                    "(relay.max_pending_bytes); start the job, or raise the limit"
                )
            while records:
                if self._file is None:
                    self._start_segment(now)
                room = self.segment_records - self._open_count
                part, records = records[:room], records[room:]
                lines = []
                for r in part:
                    envelope = {"offset": self.next_offset, "at": round(now, 3), "line": r.line}
                    if r.error:
                        envelope["error"] = r.error
                    if r.src is not None:
                        envelope["src"], envelope["seq"] = r.src, r.seq
                    lines.append(json.dumps(envelope, ensure_ascii=False) + "\n")
                    self.last = {"offset": self.next_offset, "src": r.src, "seq": r.seq}
                    self.next_offset += 1
                text = "".join(lines)
                self._guard(lambda text=text: (self._file.write(text), self._file.flush()))
                self._open_count += len(part)
                if self._open_count >= self.segment_records:
                    self._seal()
            return self.next_offset

    def tick(self, now: float | None = None) -> None:
        """Seal the open segment if it is older than ``segment_seconds`` (call a few times a second)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._file is not None and now - self._opened_at >= self.segment_seconds:
                self._seal()

    def flush(self) -> None:
        """Seal whatever is open now."""
        with self._lock:
            if self._file is not None:
                self._seal()

    def close(self) -> None:
        self.flush()
        self._save_state()

    def _start_segment(self, now: float) -> None:
        path = self.folder / OPEN_SEGMENT
        self._file = self._guard(lambda: path.open("a", encoding="utf-8"))
        self._open_count = 0
        self._open_first = self.next_offset
        self._opened_at = time.monotonic()

    def _seal(self) -> None:
        file, self._file = self._file, None
        if self.fsync:
            self._guard(lambda: os.fsync(file.fileno()))
        file.close()
        # The state goes first: a relay killed between the two finds the open segment and seals it.
        self._save_state()
        self._guard(lambda: (self.folder / OPEN_SEGMENT).rename(self.folder / segment_name(self._open_first)))

    def _guard(self, action):
        try:
            return action()
        except OSError as e:
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SpoolError(
                    f"the disk holding {self.folder} is full: nothing more can be accepted. Free space, or lower "
                    "relay.retention_bytes / relay.retention_hours; lines accepted so far are kept"
                ) from None
            raise SpoolError(f"cannot write to the spool {self.folder}: {e}") from None

    # -- state, completion, retention -----------------------------------------------------------

    def _read_state(self) -> dict:
        try:
            return json.loads((self.folder / STATE_FILE).read_text())
        except (OSError, ValueError):
            return {}

    def _save_state(self) -> None:
        state = {"next_offset": self.next_offset, "last": self.last}
        self._guard(lambda: _write_atomic(self.folder / STATE_FILE, json.dumps(state)))

    def mark_complete(self, src: str, records: int, limit: int | None = None) -> None:
        """Seal, then record that the finite source ``src`` (up to ``limit``) is wholly in the log."""
        self.flush()
        marker = {"src": src, "records": records, "limit": limit, "next_offset": self.next_offset, "at": time.time()}
        self._guard(lambda: _write_atomic(self.folder / COMPLETE_FILE, json.dumps(marker)))

    def clear_complete(self) -> None:
        (self.folder / COMPLETE_FILE).unlink(missing_ok=True)

    def complete(self) -> dict | None:
        return read_complete(self.folder)

    def pending_bytes(self) -> int:
        """Bytes of sealed segments that the job has not yet read and archived."""
        return sum(_size(p) for p in self.folder.glob(SEGMENT_GLOB))

    def prune(self, now: float | None = None) -> int:
        """Delete archived segments beyond the retention limits; return how many were deleted."""
        now = time.time() if now is None else now
        files = sorted((p for p in self.archive.rglob(SEGMENT_GLOB) if p.is_file()), key=_mtime, reverse=True)
        kept_bytes, deleted = 0, 0
        for p in files:
            kept_bytes += _size(p)
            too_old = now - _mtime(p) > self.retention_hours * 3600
            if too_old or kept_bytes > self.retention_bytes:
                p.unlink(missing_ok=True)
                deleted += 1
        return deleted


def read_complete(folder: str | Path) -> dict | None:
    """The completion marker of a finite replay, or None while the log is still being written."""
    try:
        return json.loads((Path(folder) / COMPLETE_FILE).read_text())
    except (OSError, ValueError):
        return None


def reset(folder: str | Path) -> None:
    """Delete the spool, its archive and its state (start over)."""
    import shutil

    folder = Path(folder)
    for path in (folder, archive_dir(folder)):
        shutil.rmtree(path, ignore_errors=True)


def _read_complete_records(path: Path) -> list[dict]:
    """The envelopes of a segment up to the first torn or unreadable line."""
    out = []
    with path.open(encoding="utf-8", errors="replace") as f:
        for raw in f:
            if not raw.endswith("\n"):
                break
            try:
                record = json.loads(raw)
            except ValueError:
                break
            out.append(record)
    return out


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
