"""One writer per folder, and --start-over deleting only what the project made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sentiment.config import PROJECT_ROOT
from sentiment.folders import (
    LOCK_FILE,
    MARKER_FILE,
    FolderBusy,
    FolderLock,
    UnsafeDelete,
    mark_ours,
    read_holder,
    remove_ours,
)

pytestmark = pytest.mark.unit


def test_a_second_lock_is_refused_at_once_naming_the_holder(tmp_path):
    with FolderLock(tmp_path / "spool", "relay"):
        assert read_holder(tmp_path / "spool")["pid"] == os.getpid()
        with pytest.raises(FolderBusy, match=rf"in use by another relay: pid {os.getpid()} .*use another --spool"):
            FolderLock(tmp_path / "spool", "relay", hint="use another --spool").acquire()
    FolderLock(tmp_path / "spool", "relay").acquire()  # free again once released


def test_the_lock_of_a_dead_process_is_taken_over(tmp_path):
    code = "import sys, os; from sentiment.folders import FolderLock as L; L(sys.argv[1], 'r').acquire(); os._exit(9)"
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "s")], cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 9
    dead = read_holder(tmp_path / "s")["pid"]
    assert dead != os.getpid()
    with FolderLock(tmp_path / "s", "relay"):
        assert read_holder(tmp_path / "s")["pid"] == os.getpid()


def test_start_over_deletes_only_folders_the_project_made(tmp_path):
    ours = tmp_path / "ours"
    mark_ours(ours, "test")
    (ours / "anything.txt").write_text("x")
    (ours / LOCK_FILE).write_text("")
    remove_ours(ours)
    assert sorted(p.name for p in ours.iterdir()) == [LOCK_FILE]  # the caller's lock stays

    legacy = tmp_path / "legacy-spool"  # made before the marker: only names the project writes
    legacy.mkdir()
    (legacy / "seg-000000000000.jsonl").write_text("{}\n")
    (legacy / "_state.json").write_text("{}")
    remove_ours(legacy)
    assert not legacy.exists()

    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("x")
    with pytest.raises(UnsafeDelete, match=f"not made by tweet-sentiment \\(no {MARKER_FILE}"):
        remove_ours(theirs)
    assert (theirs / "thesis.tex").exists()
    remove_ours(tmp_path / "absent")  # nothing to do


@pytest.mark.parametrize("folder", [".", "/", "~", str(PROJECT_ROOT), str(Path.home().parent)])
def test_start_over_never_deletes_the_current_home_root_or_project_folder(folder, tmp_path):
    with pytest.raises(UnsafeDelete, match="refusing to delete"):
        remove_ours(folder)
