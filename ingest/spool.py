"""A durable, append-only log of relayed lines on disk: the replayable source of the Spark job.

Usage: ``with Spool(folder) as spool: spool.append([Record(line, ...)])``

Every line the relay accepts gets the next offset and is written, inside a JSON envelope, to an
open segment (``.open.jsonl``, never read by the job); the segment is flushed on every append and,
once it holds ``segment_records`` lines or is ``segment_seconds`` old, fsynced and renamed into place
as ``seg-<first offset>.jsonl``. The job's source (:mod:`stream.spool_source`) reads sealed segments
only (a rename is atomic), in order of their first offset; its checkpoint records where each
micro-batch ends (a position: the segments whose first offset is below it were read), and the
segments of committed batches move to the archive folder. So a restarted query re-reads exactly what it had not
committed, and a relay killed at any point loses nothing it accepted: on the next open, the open
segment is sealed (a torn last line is cut off) and offsets go on from the last one. Segment names
only ever grow: the job's position in the spool relies on it.

The layout and the envelope of each line are the job's contract too: :mod:`sentiment.spool_format`.

One writer per folder: :meth:`Spool.open` takes an advisory lock on the folder (``.lock``, see
:mod:`sentiment.folders`) and a second relay is refused at once. The spool knows its identity: an id
made when its state is created (``_state.json``, ``spool_id``), which the job records in its
checkpoint, so a job never mistakes a new spool (whose segment names start again at 0) for the one
it was reading. State never runs ahead of data: offsets advance only once their lines are written,
and the state file is saved only after the segment it describes is fsynced. The ``at`` times never
go back, even when the wall clock does (the job's de-duplication watermark runs on them).

Retention: archived segments are deleted once older than ``retention_hours`` or beyond
``retention_bytes`` (oldest first). Unread segments are never deleted; beyond ``max_pending_bytes``
of them, :meth:`Spool.append` raises :class:`SpoolFull` (a replay waits, a live relay buffers).
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sentiment.folders import FolderLock, mark_ours, remove_ours
from sentiment.spool_format import (
    COMPLETE_FILE,
    OPEN_SEGMENT,
    SEGMENT_GLOB,
    STATE_FILE,
    archive_dir,
    envelope_line,
    read_complete,
    segment_name,
)

log = logging.getLogger(__name__)


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
        self.last_at = 0.0  # the newest ``at`` given: later records never get an earlier one
        self.spool_id = ""
        self.failed: str | None = None  # why a write failed: the open segment is left for recovery
        self.lock = FolderLock(self.folder, "relay", hint="give this one another spool folder (--spool)")

    # -- opening and recovery -------------------------------------------------------------------

    def __enter__(self) -> Spool:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self, start_over: bool = False) -> None:
        """Lock the folder, create it, seal a segment left open by a killed relay, find the next offset.

        With ``start_over``, first delete what the spool and its archive hold (folders the project made).

        Raises:
            sentiment.folders.FolderBusy: another relay writes this spool.
            sentiment.folders.UnsafeDelete: ``start_over`` on a folder the project did not make.
        """
        self.lock.acquire()
        try:
            if start_over:
                remove_ours(self.folder)
                remove_ours(self.archive, keep=())
            mark_ours(self.folder, "the relay's spool")
            mark_ours(self.archive, "the spool's archive")
        except OSError as e:
            self.lock.release()
            raise SpoolError(f"cannot create the spool folder {self.folder}: {e}") from None
        except BaseException:
            self.lock.release()
            raise
        self._recover()

    def _recover(self) -> None:
        state = self._read_state()
        self.next_offset = int(state.get("next_offset", 0))
        self.last = state.get("last")
        self.last_at = float(state.get("last_at", 0.0))
        # Without a state file, offsets may start again at 0: a new spool, with a new identity.
        self.spool_id = state.get("spool_id") or uuid.uuid4().hex[:12]
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
        self.last_at = max(self.last_at, float(record.get("at") or 0.0))
        if record["offset"] + 1 > self.next_offset:
            self.next_offset = record["offset"] + 1
            self.last = {k: record.get(k) for k in ("offset", "src", "seq")}

    # -- writing --------------------------------------------------------------------------------

    def append(self, records: Iterable[Record], now: float | None = None) -> int:
        """Accept records: give each the next offset and write them to the open segment.

        Returns the offset after the last one. Offsets (and :attr:`last`) advance only once the
        lines are written; after a failed write the spool takes nothing more until reopened.
        Raises :class:`SpoolFull` when too much is unread and :class:`SpoolError` when the disk
        refuses the write.
        """
        records = list(records)
        if not records:
            return self.next_offset
        with self._lock:
            if self.failed:
                raise SpoolError(f"the spool {self.folder} took no more lines after a failed write: {self.failed}")
            if self.max_pending_bytes and self.pending_bytes() > self.max_pending_bytes:
                raise SpoolFull(
                    f"{self.folder} holds more than {self.max_pending_bytes:,} bytes that the job has not read "
                    "(relay.max_pending_bytes); start the job, or raise the limit"
                )
            # The relay's clock may jump back; the times it writes never do.
            self.last_at = max(self.last_at, round(time.time() if now is None else now, 3))
            while records:
                if self._file is None:
                    self._start_segment()
                room = self.segment_records - self._open_count
                part, records = records[:room], records[room:]
                self._write(part)
                if self._open_count >= self.segment_records:
                    self._seal()
            return self.next_offset

    def _write(self, part: list[Record]) -> None:
        text = "".join(
            envelope_line(self.next_offset + i, self.last_at, r.line, r.error, r.src, r.seq) for i, r in enumerate(part)
        )
        try:
            self._guard(lambda: (self._file.write(text), self._file.flush()))
        except SpoolError as e:
            self._fail(str(e))
            raise
        last = part[-1]
        self.next_offset += len(part)
        self.last = {"offset": self.next_offset - 1, "src": last.src, "seq": last.seq}
        self._open_count += len(part)

    def _fail(self, reason: str) -> None:
        """Stop taking lines after a failed write; the open segment (perhaps with a torn last line)
        stays for the next :meth:`open` to recover, and the state stays at what was written before."""
        self.failed = reason
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()

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
        """Seal what is open and save the state (not after a failed write), then unlock the folder."""
        try:
            if not self.failed:
                self.flush()
                self._save_state()
        finally:
            self.lock.release()

    def _start_segment(self) -> None:
        path = self.folder / OPEN_SEGMENT
        self._file = self._guard(lambda: path.open("a", encoding="utf-8"))
        self._open_count = 0
        self._open_first = self.next_offset
        self._opened_at = time.monotonic()

    def _seal(self) -> None:
        file = self._file
        try:
            if self.fsync:
                self._guard(lambda: os.fsync(file.fileno()))
        except SpoolError as e:
            self._fail(str(e))
            raise
        self._file = None
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
        state = {"spool_id": self.spool_id, "next_offset": self.next_offset, "last": self.last, "last_at": self.last_at}
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
