"""Processes under test: free ports, starting a part, waiting for it, stopping it with all it started.

Process trees are read from Linux's /proc. A part started with :func:`start_module` has its own
process group, so :func:`stop_group` takes its children (a JVM, the service's workers) too.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

from sentiment.config import PROJECT_ROOT


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
    """Whether ``pid`` is a model process of the service (``python -m model_api.runner.model_process``)."""
    with contextlib.suppress(OSError):
        return "model_api.runner.model_process" in Path(f"/proc/{pid}/cmdline").read_text()
    return False


def model_processes(pid: int) -> list[int]:
    """The living model processes below ``pid`` (a service or one of its workers)."""
    return [p for p in process_tree(pid)[1:] if is_model_process(p)]


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


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM ``process`` and wait for it; SIGKILL it after 30 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def stop_group(process: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to the process group ``process`` leads (one started in a new session), if still there."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)


def start_process(
    command: Sequence[str], log: Path, env: Mapping[str, str] | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.Popen:
    """``command`` from the project root in its own process group, its output appended to ``log``."""
    with log.open("ab") as out:
        return subprocess.Popen(
            list(command),
            cwd=PROJECT_ROOT,
            env=dict(env) if env is not None else None,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its children (JVM, workers) too
            preexec_fn=preexec,
        )


def start_module(
    *args: str, log: Path, env: Mapping[str, str] | None = None, preexec: Callable[[], None] | None = None
) -> subprocess.Popen:
    """``python -m ARGS`` as :func:`start_process` starts a command."""
    return start_process([sys.executable, "-m", *args], log, env, preexec)


def run_module(
    *args: str, env: Mapping[str, str], timeout: float = 300, preexec: Callable[[], None] | None = None
) -> subprocess.CompletedProcess:
    """Run ``python -m ARGS`` from the project root to its end; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=PROJECT_ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec,
    )


def file_size_limit(limit: int) -> Callable[[], None]:
    """A ``preexec_fn``: writes past ``limit`` bytes of a file fail (EFBIG), as on a full disk."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def start_service(
    log: Path, settings: Mapping[str, str] | None = None, *args: str, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """``python -m model_api ARGS`` on 127.0.0.1 (``port``, or a free one), with ``settings``
    (``TWEETSENT_*``) over this environment and its output in ``log``; return it and its URL."""
    port = port or free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "model_api", *args, "--port", str(port)],
            cwd=PROJECT_ROOT,
            env={**os.environ, **(settings or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return process, f"http://127.0.0.1:{port}"


def wait_for_service(
    process: subprocess.Popen, url: str, log: Path, workers: int = 1, timeout: float = 180
) -> set[int]:
    """:func:`wait_for_workers`; when they do not answer in time, stop the service and raise with its log.

    Raises:
        RuntimeError: the service did not start (the message ends with its log).
    """
    try:
        return wait_for_workers(url, workers, timeout=timeout)
    except RuntimeError:
        stop_process(process)
        raise RuntimeError(f"the service did not start; its log:\n{log.read_text()[-3000:]}") from None


def wait_until(condition: Callable[[], bool], timeout: float, what: str, poll: float = 0.2) -> float:
    """Poll ``condition`` until true; return the seconds it took.

    Raises:
        TimeoutError: naming ``what`` after ``timeout`` seconds.
    """
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(poll)
    return time.monotonic() - started


def healthy(*urls: str) -> bool:
    """Whether ``GET /health`` answers 2xx at every one of ``urls`` (base URLs)."""
    try:
        return all(requests.get(url + "/health", timeout=2).ok for url in urls)
    except requests.RequestException:
        return False


def wait_for_workers(url: str, workers: int, timeout: float = 300.0) -> set[int]:
    """Poll ``GET /health`` on fresh connections until ``workers`` distinct worker pids answered
    (a compiled engine makes workers start apart).

    Raises:
        RuntimeError: when fewer workers answered within ``timeout`` seconds.
    """
    workers = max(1, workers)  # at least one answer, whatever the caller asked
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = requests.get(f"{url}/health", timeout=2, headers={"Connection": "close"}).json()
            seen.add(int(body["worker"]))
        except (requests.RequestException, ValueError, KeyError):
            pass
        if len(seen) >= workers:
            return seen
        time.sleep(0.05)
    raise RuntimeError(f"{len(seen)} of {workers} service worker(s) answered within {timeout:.0f} s")
