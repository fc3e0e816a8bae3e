"""What the job keeps in its checkpoint beside Spark's own state: its lock, which spool it reads, and
whether Spark's file source made it.

Usage: ``lock = lock_checkpoint(folder)``; ``check_spool(checkpoint, spool)`` before and while running;
``made_by_file_source(checkpoint)`` before a query starts

* One job per checkpoint: the job locks its checkpoint folder (:class:`sentiment.folders.FolderLock`)
  before anything else, so a second job, even one started with ``--start-over``, is refused at
  once and deletes nothing.
* A checkpoint belongs to one spool. The job's source remembers a position in the spool (Spark's
  file source, in an older checkpoint, the names it read), and a spool made anew (the relay's
  ``--start-over``, a lost ``_state.json``) names its segments from offset 0 again: a job resuming
  on it would skip them without a word. So the job records the spool's id
  (``spool_id``, made by the relay with the spool) in its checkpoint on first sight, and stops with
  :class:`SpoolMismatch` when the spool's id is another.
* A checkpoint made before the job read the spool with :mod:`stream.spool_source` holds Spark's
  file source log (``sources/0``), the names of the segments it read: its offsets mean nothing to
  the new source, so such a checkpoint goes on with the file source (:func:`made_by_file_source`)
  until the job is started over.
"""

from __future__ import annotations

from pathlib import Path

from sentiment.folders import FolderLock
from sentiment.spool_format import spool_id

SPOOL_ID_FILE = "spool_id"
FILE_SOURCE_LOG = Path("sources", "0")  # Spark's file source log of the query's one source


class SpoolMismatch(RuntimeError):
    """The checkpoint was made reading another spool than the one in the folder now."""


def lock_checkpoint(checkpoint: str | Path) -> FolderLock:
    """Lock the job's checkpoint folder.

    Raises:
        sentiment.folders.FolderBusy: another job holds it (the message names that job).
    """
    lock = FolderLock(checkpoint, "job", hint="give this one another checkpoint (--checkpoint)")
    lock.acquire()
    return lock


def check_spool(checkpoint: str | Path, spool: str | Path) -> None:
    """Record the spool's id in the checkpoint on first sight; afterwards, insist on the same one.

    Raises:
        SpoolMismatch: the spool in ``spool`` is not the one this checkpoint was reading.
    """
    current = spool_id(spool)
    if current is None:  # no relay has opened it yet (or one is emptying it right now)
        return
    path = Path(checkpoint) / SPOOL_ID_FILE
    try:
        recorded = path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SPOOL_ID_FILE}.tmp")
        tmp.write_text(current)
        tmp.replace(path)
        return
    if recorded and recorded != current:
        raise SpoolMismatch(
            f"the spool {spool} is a new one (id {current}) since this job's checkpoint {checkpoint} read it "
            f"(id {recorded}): the relay was started over (or its _state.json lost), so its segment names "
            "start again at 0 and a resumed job would skip them. Nothing was skipped: start the job over too "
            "(python -m stream --start-over, or ./run_pipeline.sh --start-over), which reads the new spool "
            "from its start"
        )


def made_by_file_source(checkpoint: str | Path) -> bool:
    """Whether Spark's file source wrote this checkpoint's source log (the spool source writes none)."""
    try:
        return any(not p.name.startswith(".") for p in (Path(checkpoint) / FILE_SOURCE_LOG).iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return False
