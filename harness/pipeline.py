"""The three parts of the pipeline as separate processes in one working folder, and what came out.

Usage: ``p = Pipeline(work); p.start_service(); p.start_relay("replay", ...); p.start_job()``

:func:`work_env` points every folder the parts write (spool, outputs, checkpoints) into one working
folder; :class:`Pipeline` starts the parts there as ``run_pipeline.sh`` does, :class:`Cluster` a
Spark standalone master and workers, :class:`Reader` polls the output as a user's notebook would,
and :func:`account` counts every input id in the output: an :class:`Outcome`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from harness.processes import free_port, healthy, process_tree, start_module, stop_group, wait_until
from ingest.replay import BUNDLED_SAMPLE, replay_tweets
from sentiment.config import PROJECT_ROOT
from sentiment.spool_format import STATE_FILE


def work_env(work: Path) -> dict[str, str]:
    """The settings (``TWEETSENT_*``) that put the spool, the outputs and the checkpoints in ``work``."""
    return {
        "TWEETSENT_RELAY__SPOOL": str(work / "spool"),
        "TWEETSENT_STREAM__OUTPUT": str(work / "tweets"),
        "TWEETSENT_STREAM__QUARANTINE": str(work / "quarantine"),
        "TWEETSENT_STREAM__CHECKPOINT": str(work / "checkpoints"),
        "TWEETSENT_TRENDS__OUTPUT": str(work / "trends"),
        "TWEETSENT_TRENDS__ALERTS": str(work / "alerts"),
    }


def spooled(spool: Path) -> int:
    """Offsets the relay has sealed in the spool folder ``spool`` so far (0 before it started)."""
    try:
        return json.loads((spool / STATE_FILE).read_text())["next_offset"]
    except (OSError, ValueError, KeyError):
        return 0


def parquet_files(folder: Path) -> list[Path]:
    """The data files a reader sees (Spark's and the sink's ``_``/``.`` names excluded)."""
    files: list[Path] = []
    # os.walk, not rglob: a staging folder that the sink removes mid-walk is skipped, not an error;
    # following links: a partition is a link to its current version (stream.compaction).
    for parent, dirs, names in os.walk(folder, followlinks=True):
        dirs[:] = [d for d in dirs if not d.startswith(("_", "."))]
        files += [Path(parent) / n for n in names if n.endswith(".parquet") and not n.startswith(("_", "."))]
    return files


class Reader(threading.Thread):
    """Polls a parquet folder with pandas, as a user's notebook would, and counts what goes wrong."""

    def __init__(self, folder: Path, every: float = 0.25) -> None:
        super().__init__(daemon=True, name="parquet-reader")
        self.folder, self.every = folder, every
        self.reads, self.errors, self.shrank = 0, [], 0
        self._stop_event = threading.Event()
        self._last = 0

    def run(self) -> None:
        import pandas as pd

        while not self._stop_event.wait(self.every):
            if not parquet_files(self.folder):
                continue
            try:
                n = len(pd.read_parquet(self.folder, columns=["id"]))
            except Exception as e:  # what a user's reader would see
                self.errors.append(f"{type(e).__name__}: {str(e)[:200]}")
                continue
            self.reads += 1
            self.shrank += n < self._last
            self._last = max(self._last, n)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=10)


@dataclass
class Cluster:
    """A Spark standalone master and workers on 127.0.0.1 (``scripts/spark_cluster.sh``), on free ports."""

    folder: Path
    workers: int = 2
    master_port: int = field(default_factory=free_port)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "SPARK_CLUSTER_DIR": str(self.folder),
            "SPARK_MASTER_PORT": str(self.master_port),
            "SPARK_MASTER_WEBUI_PORT": str(free_port()),
            "SPARK_WORKER_WEBUI_PORT": "0",
            "SPARK_WORKERS": str(self.workers),
            "PYSPARK_PYTHON": sys.executable,
        }

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    def _script(self, command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(PROJECT_ROOT / "scripts" / "spark_cluster.sh"), command],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start(self) -> None:
        done = self._script("start")
        if done.returncode != 0:
            self.stop()
            raise RuntimeError(f"the Spark cluster did not start:\n{done.stdout}{done.stderr}")

    def stop(self) -> None:
        self._script("stop")

    def worker_pid(self, i: int) -> int:
        return int((self.folder / f"worker-{i}.pid").read_text())

    def kill_worker(self, i: int) -> None:
        """SIGKILL worker ``i`` with its executor and Python workers, as if its machine died."""
        pid = self.worker_pid(i)
        for p in reversed(process_tree(pid)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)

    def apps(self) -> set[Path]:
        """The application folders of the workers (one per application an executor ran for)."""
        return set(self.folder.glob("worker-*/app-*"))

    def executors(self, since: set[Path] = frozenset()) -> list[str]:
        """The workers that ran an executor of an application not in ``since``."""
        return sorted({app.parent.name for app in self.apps() - since})

    def executor_logs(self) -> str:
        """The stderr of every executor the workers ran (where the Python workers' log lines go)."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.folder.glob("worker-*/app-*/*/stderr")))


@dataclass
class Pipeline:
    """The three parts of the pipeline as separate processes, in one working folder.

    ``replicas``: model-service processes on ports ``service_port``, then free ports (named
    ``service``, ``service-2``, ...); ``master``: the Spark master the job runs on (default local[2]).
    """

    work: Path
    service_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    replicas: int = 1
    master: str | None = None
    service_ports: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.service_ports = [self.service_port] + [free_port() for _ in range(self.replicas - 1)]
        self.env = {
            **os.environ,
            **work_env(self.work),
            "TWEETSENT_STREAM__TRIGGER_SECONDS": "1",
            "TWEETSENT_STREAM__MAX_FILES_PER_TRIGGER": "4",
            "TWEETSENT_SERVICE__PORT": str(self.service_port),
            # fp32 is ready in seconds; what is tested here is the pipeline, not the engine.
            "TWEETSENT_SERVICE__PRECISION": os.environ.get("TWEETSENT_SERVICE__PRECISION", "fp32"),
        }

    @property
    def output(self) -> Path:
        return self.work / "tweets"

    @property
    def quarantine(self) -> Path:
        return self.work / "quarantine"

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service_port}"

    @property
    def service_urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.service_ports]

    @staticmethod
    def replica_name(i: int) -> str:
        return "service" if i == 0 else f"service-{i + 1}"

    def start(self, name: str, *args: str, env: dict[str, str] | None = None, preexec=None) -> subprocess.Popen:
        proc = start_module(*args, log=self.work / f"{name}.log", env=env or self.env, preexec=preexec)
        self.procs[name] = proc
        return proc

    def start_service(self, replica: int | None = None) -> None:
        """Start every replica (or the one numbered ``replica``, from 0) and wait until they are healthy."""
        chosen = range(self.replicas) if replica is None else [replica]
        for i in chosen:
            env = {**self.env, "TWEETSENT_SERVICE__PORT": str(self.service_ports[i])}
            self.start(self.replica_name(i), "model_api", env=env)
        urls = [self.service_urls[i] for i in chosen]
        wait_until(lambda: healthy(*urls), 300, "the model service to become healthy")

    def start_relay(self, *args: str) -> subprocess.Popen:
        return self.start("relay", "ingest", *args)

    def start_job(self) -> subprocess.Popen:
        args = ["--until-done", "--service-url", ",".join(self.service_urls)]
        return self.start("job", "stream", *args, *(["--master", self.master] if self.master else []))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        stop_group(proc, sig)
        proc.wait(timeout=60)

    def wait(self, name: str, timeout: float) -> int:
        return self.procs.pop(name).wait(timeout=timeout)

    def spooled(self) -> int:
        """Offsets the relay has sealed in the spool so far."""
        return spooled(self.work / "spool")

    def rows(self) -> int:
        import pandas as pd

        files = parquet_files(self.output)
        return len(pd.read_parquet(self.output, columns=["id"])) if files else 0

    def start_replay(self, tweets: int, rate: float) -> tuple[str, ...]:
        """Start the service, a relay replaying ``tweets`` of the sample at ``rate``, and the job;
        return the relay's arguments (to start it again)."""
        relay_args = ("replay", "--limit", str(tweets), "--rate", str(rate))
        self.start_service()
        self.start_relay(*relay_args)
        self.start_job()
        return relay_args

    def start_lines(self, file: Path) -> float:
        """Start the service, a relay sending the JSON-lines ``file`` as fast as it goes, and the job;
        return when the relay started (``time.monotonic()``)."""
        self.start_service()
        started = time.monotonic()
        self.start_relay("lines", "--file", str(file), "--rate", "0")
        self.start_job()
        return started

    def recover(self, what: str, repair: Callable[[], object] | None = None, timeout: float = 300) -> float:
        """Call ``repair`` (if any), then wait for a row the output did not hold before; return the
        seconds from now to that row."""
        rows_before, repaired = self.rows(), time.monotonic()
        if repair is not None:
            repair()
        wait_until(lambda: self.rows() > rows_before, timeout, f"a new row after {what}")
        return time.monotonic() - repaired

    def job_done(self, timeout: float = 600) -> None:
        """Wait for the job to end; it must end well."""
        status = self.wait("job", timeout)
        assert status == 0, f"the job exited with {status}:\n{self.log('job')[-3000:]}"

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM if name == "job" else signal.SIGKILL)

    def log(self, name: str) -> str:
        path = self.work / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@dataclass
class Outcome:
    scenario: str
    tweets_in: int
    rows_out: int
    lost: int
    duplicated: int
    recover_s: float
    quarantined: int = 0
    bad_lines: int = 0
    reader_reads: int = 0
    reader_errors: int = 0
    notes: str = ""
    lost_ids: list[str] = field(default_factory=list)
    duplicated_ids: list[str] = field(default_factory=list)


def account(
    name: str, expected: list[str], p: Pipeline, reader: Reader, recover_s: float, notes: str = "", **extra
) -> Outcome:
    import pandas as pd

    out = pd.read_parquet(p.output, columns=["id"])["id"].tolist() if parquet_files(p.output) else []
    counts = Counter(out)
    lost = sorted(set(expected) - set(counts))
    dups = sorted(i for i, c in counts.items() if c > 1)
    return Outcome(
        name,
        len(expected),
        len(out),
        len(lost),
        sum(counts[i] - 1 for i in dups),
        round(recover_s, 1),
        reader_reads=reader.reads,
        reader_errors=len(reader.errors),
        lost_ids=lost[:20],
        duplicated_ids=dups[:20],
        notes="; ".join([notes, *reader.errors[:3]]).strip("; "),
        **extra,
    )


@contextlib.contextmanager
def watched(p: Pipeline) -> Iterator[Reader]:
    """A :class:`Reader` of ``p``'s output (started by the caller); at the end it and every part stop."""
    reader = Reader(p.output)
    try:
        yield reader
    finally:
        reader.stop()
        p.stop_all()


def replay_ids(tweets: int) -> list[str]:
    """The ids of the first ``tweets`` tweets of the bundled sample, as a replay sends them."""
    return [t.id for t in replay_tweets(BUNDLED_SAMPLE, limit=tweets)]


def mid_stream(p: Pipeline, at: int, timeout: float = 300) -> None:
    """Wait until the output holds ``at`` rows."""
    wait_until(lambda: p.rows() >= at, timeout, f"{at} rows in {p.output}")
