"""The processes of a service under test, read from Linux's /proc: free ports, process trees."""

from __future__ import annotations

import contextlib
import socket
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
