"""The processes of a service under test, read from Linux's /proc: free ports, process trees."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its living descendants (a server, its workers, their model processes)."""
    tree, pending = [], [pid]
    while pending:
        current = pending.pop()
        # Each thread lists the children it started (a model process restarted by a supervisor thread).
        children = []
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                children += (task / "children").read_text().split()
        if not Path(f"/proc/{current}").exists():
            continue  # gone
        tree.append(current)
        pending.extend(dict.fromkeys(int(c) for c in children))
    return tree


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a living process has used so far, in seconds; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def is_model_process(pid: int) -> bool:
    """Whether ``pid`` is a model process of the service (``python -m model_api.engine_process``)."""
    with contextlib.suppress(OSError):
        return "model_api.engine_process" in Path(f"/proc/{pid}/cmdline").read_text()
    return False


def sigterm_and_time(process: subprocess.Popen, limit: float = 30.0) -> float:
    """SIGTERM ``process``; return the seconds until it and every process it started are gone
    (infinity, after a SIGKILL of all of them, when that took longer than ``limit``)."""
    tree = process_tree(process.pid)
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=limit)
    while any(Path(f"/proc/{p}").exists() and not _zombie(p) for p in tree) and time.monotonic() - started < limit:
        time.sleep(0.05)
    took = time.monotonic() - started
    if took < limit:
        return took
    for pid in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    process.wait()
    return float("inf")


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has ended and waits only for its parent to collect its status."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
