"""Break the running pipeline on purpose and account for every tweet: the fault benchmark.

Usage: python -m benchmarks.faults [--scenario NAME ...] [--tweets N] [--rate R] [--outage S] [--json]

Each scenario starts the real parts as separate processes, as ``run_pipeline.sh`` does (the model
service, the relay writing the spool, the Spark job), breaks one, repairs it, waits for the job to
finish the replay, and counts what ``pandas.read_parquet`` returns: every input id exactly once, or
the ids lost and duplicated. A reader polls the output all along and counts its errors.

Scenarios: ``service-outage`` (the service stopped for ``--outage`` seconds mid-stream, then
started again), ``kill-job`` (the job SIGKILLed mid-stream, then the same command run again),
``kill-relay`` (the relay SIGKILLed mid-stream, then rerun), ``malformed-flood`` (a JSON-lines file
with one bad line of 13 kinds for every two good ones, and one id sent 62 times), ``cluster`` (the
job on a standalone master with two workers), ``kill-worker`` (the same, one worker SIGKILLed
mid-stream), ``kill-replica`` (two model-service replicas, one SIGKILLed mid-stream),
``long-posts`` (40 posts of 20,000 CJK characters among ordinary tweets:
:mod:`benchmarks.faults_requests`), and the guards' scenarios of :mod:`benchmarks.guards`:
``two-writers``, ``disk-full``, ``sigterm``.
The tests in ``tests/faults`` run the same scenarios and assert on the same figures.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.processes import free_port, process_tree
from ingest.replay import BUNDLED_SAMPLE, replay_tweets
from sentiment.config import PROJECT_ROOT
from sentiment.logs import setup_logging

SCENARIOS = (
    "service-outage",
    "kill-job",
    "kill-relay",
    "malformed-flood",
    "long-posts",
    "cluster",
    "kill-worker",
    "kill-replica",
    "two-writers",
    "disk-full",
    "sigterm",
)


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


def parquet_files(folder: Path) -> list[Path]:
    """The data files a reader sees (Spark's and the sink's ``_``/``.`` names excluded)."""
    files: list[Path] = []
    # os.walk, not rglob: a staging folder that the sink removes mid-walk is skipped, not an error.
    for parent, dirs, names in os.walk(folder):
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
            "TWEETSENT_RELAY__SPOOL": str(self.work / "spool"),
            "TWEETSENT_STREAM__OUTPUT": str(self.output),
            "TWEETSENT_STREAM__QUARANTINE": str(self.quarantine),
            "TWEETSENT_STREAM__CHECKPOINT": str(self.work / "checkpoints"),
            "TWEETSENT_TRENDS__OUTPUT": str(self.work / "trends"),
            "TWEETSENT_TRENDS__ALERTS": str(self.work / "alerts"),
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
        log = (self.work / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            [sys.executable, "-m", *args],
            cwd=PROJECT_ROOT,
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill takes its children (JVM, workers) too
            preexec_fn=preexec,
        )
        self.procs[name] = proc
        return proc

    def start_service(self, replica: int | None = None) -> None:
        """Start every replica (or the one numbered ``replica``, from 0) and wait until they are healthy."""
        import requests

        chosen = range(self.replicas) if replica is None else [replica]
        for i in chosen:
            env = {**self.env, "TWEETSENT_SERVICE__PORT": str(self.service_ports[i])}
            self.start(self.replica_name(i), "model_api", env=env)

        def healthy() -> bool:
            try:
                return all(requests.get(self.service_urls[i] + "/health", timeout=2).ok for i in chosen)
            except requests.RequestException:
                return False

        wait_until(healthy, 300, "the model service to become healthy")

    def start_relay(self, *args: str) -> subprocess.Popen:
        return self.start("relay", "ingest", *args)

    def start_job(self) -> subprocess.Popen:
        args = ["--until-done", "--service-url", ",".join(self.service_urls)]
        return self.start("job", "stream", *args, *(["--master", self.master] if self.master else []))

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=60)

    def wait(self, name: str, timeout: float) -> int:
        return self.procs.pop(name).wait(timeout=timeout)

    def spooled(self) -> int:
        """Offsets the relay has sealed in the spool so far."""
        try:
            return json.loads((self.work / "spool" / "_state.json").read_text())["next_offset"]
        except (OSError, ValueError, KeyError):
            return 0

    def rows(self) -> int:
        import pandas as pd

        files = parquet_files(self.output)
        return len(pd.read_parquet(self.output, columns=["id"])) if files else 0

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


def replay_ids(tweets: int) -> list[str]:
    return [t.id for t in replay_tweets(BUNDLED_SAMPLE, limit=tweets)]


def mid_stream(p: Pipeline, at: int, timeout: float = 300) -> None:
    wait_until(lambda: p.rows() >= at, timeout, f"{at} rows in {p.output}")


def service_outage(work: Path, tweets: int, rate: float, outage: float) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_job()
        reader.start()
        mid_stream(p, tweets // 4)
        p.kill("service")
        down_at, rows_down = time.monotonic(), p.rows()
        time.sleep(outage)  # the fault itself lasts this long; outcomes are polled below
        p.start_service()
        recovered = wait_until(lambda: p.rows() > rows_down, 300, "a new row after the outage")
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        held = "holding batch" in p.log("job")
        return account(
            "service-outage",
            replay_ids(tweets),
            p,
            reader,
            recovered,
            notes=f"down {time.monotonic() - down_at - recovered:.0f}s; job said it held a batch: {held}",
        )
    finally:
        reader.stop()
        p.stop_all()


def kill_job(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_job()
        reader.start()
        mid_stream(p, tweets // 3)
        p.kill("job")
        rows_down = p.rows()
        restarted = time.monotonic()
        p.start_job()
        wait_until(lambda: p.rows() > rows_down, 300, "a new row after the job's restart")
        recovered = time.monotonic() - restarted
        status = p.wait("job", 600)
        assert status == 0, f"the rerun job exited with {status}:\n{p.log('job')[-3000:]}"
        return account("kill-job", replay_ids(tweets), p, reader, recovered)
    finally:
        reader.stop()
        p.stop_all()


def kill_relay(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    try:
        p.start_service()
        relay_args = ("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_relay(*relay_args)
        p.start_job()
        reader.start()
        wait_until(lambda: p.spooled() >= tweets // 3, 300, f"{tweets // 3} tweets in the spool")
        p.kill("relay")
        rows_down = p.rows()
        restarted = time.monotonic()
        p.start_relay(*relay_args)
        wait_until(lambda: p.rows() > rows_down, 300, "a new row after the relay's restart")
        recovered = time.monotonic() - restarted
        assert p.wait("relay", 600) == 0
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        return account(
            "kill-relay",
            replay_ids(tweets),
            p,
            reader,
            recovered,
            notes="relay resumed: " + str("resuming after record" in p.log("relay")),
        )
    finally:
        reader.stop()
        p.stop_all()


def cluster_replay(
    work: Path, tweets: int, rate: float, kill_worker: bool = False, cluster: Cluster | None = None
) -> Outcome:
    """The replay through a standalone master and two workers (``cluster``, or one started here and
    stopped at the end); with ``kill_worker``, worker 1 (its executor and Python workers too) is
    SIGKILLed mid-stream and the job must go on with worker 2."""
    own = cluster is None
    cluster = cluster or Cluster(work / "cluster")
    if own:
        cluster.start()
    p = Pipeline(work, master=cluster.url)
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(tweets), "--rate", str(rate))
        started, before = time.monotonic(), cluster.apps()
        p.start_job()
        reader.start()
        notes, recovered = "", 0.0
        wait_until(lambda: "worker-1" in cluster.executors(since=before), 300, "an executor on worker 1")
        if kill_worker:
            mid_stream(p, tweets // 3)
            cluster.kill_worker(1)
            killed_at, rows_down = time.monotonic(), p.rows()
            wait_until(lambda: p.rows() > rows_down, 300, "a new row after worker 1 was killed")
            recovered = time.monotonic() - killed_at
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        notes = f"executors on {', '.join(cluster.executors(since=before))}; took {time.monotonic() - started:.0f}s"
        return account("kill-worker" if kill_worker else "cluster", replay_ids(tweets), p, reader, recovered, notes)
    finally:
        reader.stop()
        p.stop_all()
        if own:
            cluster.stop()


def kill_replica(work: Path, tweets: int, rate: float) -> Outcome:
    """Two model-service replicas; the second is SIGKILLed mid-stream and stays down."""
    p = Pipeline(work, replicas=2)
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_job()
        reader.start()
        mid_stream(p, tweets // 3)
        p.kill("service-2")
        killed_at, rows_down = time.monotonic(), p.rows()
        wait_until(lambda: p.rows() > rows_down, 300, "a new row after replica 2 was killed")
        recovered = time.monotonic() - killed_at
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        dead = p.service_urls[1]
        named = sum(dead in line for line in p.log("job").splitlines() if "replica" in line)
        return account("kill-replica", replay_ids(tweets), p, reader, recovered, notes=f"job log names {dead}: {named}")
    finally:
        reader.stop()
        p.stop_all()


def malformed_lines(good: list[dict]) -> list[tuple[bytes, str]]:
    """One bad line of each kind, with (a prefix of) the reason the quarantine must give."""
    ok = good[0]
    return [
        (b"this is not json", "not a valid JSON object"),
        (b'{"id": "x1", "text": "unterminated', "not a valid JSON object"),
        (b'["an", "array"]', "not a valid JSON object"),
        (json.dumps({**ok, "id": {"nested": 1}}).encode(), 'field "id" must be a string or an integer, got object'),
        (json.dumps({**ok, "text": 42}).encode(), 'field "text" must be a string, got bigint'),
        (json.dumps({k: v for k, v in ok.items() if k != "id"}).encode(), 'missing field "id"'),
        (json.dumps({**ok, "id": "  "}).encode(), 'empty field "id"'),
        (json.dumps({k: v for k, v in ok.items() if k != "text"}).encode(), 'missing field "text"'),
        (json.dumps({**ok, "id": "x9", "created_at": "yesterday"}).encode(), '"created_at" is not an ISO 8601'),
        (b'{"id": "x2", "text": "caf\xe9 latin-1"}', "not valid UTF-8"),
        (b'{"id": "x3", "text": "nul \x00 inside"}', "not a valid JSON object"),
        (b'{"id": "x4", "text": "' + b"a" * (1 << 20) + b'"}', "line of 1,048,"),
        (b"", "blank line"),
        (b"0,123,only three fields", "not a valid JSON object"),
    ]


def malformed_flood(work: Path, tweets: int) -> Outcome:
    """Good tweets with one bad line of 14 kinds after every two, and one good id sent 62 times."""
    p = Pipeline(work)
    good = [json.loads(t.to_json_line()) for t in replay_tweets(BUNDLED_SAMPLE, limit=tweets)]
    kinds = malformed_lines(good)
    lines: list[bytes] = []
    expected_reasons: list[str] = []
    for i, tweet in enumerate(good):
        lines.append(json.dumps(tweet).encode())
        if i % 2 == 1:
            bad, reason = kinds[(i // 2) % len(kinds)]
            lines.append(bad)
            expected_reasons.append(reason)
    repeated = json.dumps(good[7]).encode()
    lines += [repeated] * 61  # with the original: 62 copies of one id
    flood = work / "flood.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    flood.write_bytes(b"\n".join(lines) + b"\n")
    reader = Reader(p.output)
    try:
        p.start_service()
        started = time.monotonic()
        p.start_relay("lines", "--file", str(flood), "--rate", "0")
        p.start_job()
        reader.start()
        status = p.wait("job", 900)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        import pandas as pd

        q = pd.read_parquet(p.quarantine) if parquet_files(p.quarantine) else pd.DataFrame(columns=["reason"])
        reasons = sorted(q["reason"].tolist())
        matched = sum(
            1
            for want, got in zip(sorted(expected_reasons), _match(expected_reasons, reasons), strict=True)
            if got is not None and want in got
        )
        return account(
            "malformed-flood",
            [t["id"] for t in good],
            p,
            reader,
            time.monotonic() - started,
            quarantined=len(q),
            bad_lines=len(expected_reasons),
            notes=f"{matched} of {len(expected_reasons)} bad lines quarantined with the expected reason",
        )
    finally:
        reader.stop()
        p.stop_all()


def _match(wanted: list[str], got: list[str]) -> list[str | None]:
    """Pair each wanted reason prefix (sorted) with a distinct quarantined reason containing it."""
    pool = list(got)
    out: list[str | None] = []
    for want in sorted(wanted):
        hit = next((g for g in pool if want in g), None)
        if hit is not None:
            pool.remove(hit)
        out.append(hit)
    return out


def run_scenario(name: str, work: Path, tweets: int, rate: float, outage: float) -> Outcome:
    if name == "service-outage":
        return service_outage(work, tweets, rate, outage)
    if name == "kill-job":
        return kill_job(work, tweets, rate)
    if name == "kill-relay":
        return kill_relay(work, tweets, rate)
    if name == "malformed-flood":
        return malformed_flood(work, tweets)
    if name in ("cluster", "kill-worker"):
        return cluster_replay(work, tweets, rate, kill_worker=name == "kill-worker")
    if name == "kill-replica":
        return kill_replica(work, tweets, rate)
    if name == "long-posts":
        # benchmarks.faults_requests builds on this module: imported by name, at run time only.
        return importlib.import_module("benchmarks.faults_requests").long_posts(work, min(tweets, 300))
    guards = importlib.import_module("benchmarks.guards")  # it builds on this module: imported at run time

    if name == "two-writers":
        return guards.two_writers(work, tweets, rate)
    if name == "disk-full":
        return guards.disk_full(work, tweets)
    if name == "sigterm":
        return guards.sigterm(work, tweets, rate)
    raise ValueError(f"unknown scenario {name!r}; one of {SCENARIOS}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable (default: all)")
    p.add_argument("--tweets", type=int, default=3000, help="tweets replayed per scenario")
    p.add_argument("--rate", type=float, default=60.0, help="tweets/s the relay offers")
    p.add_argument("--outage", type=float, default=30.0, help="seconds the service stays down")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="tweetsent-faults-"))
    outcomes = []
    print(f"{'scenario':<16}{'tweets in':>10}{'rows out':>10}{'lost':>6}{'dup':>6}{'recover s':>11}  notes")
    for name in args.scenario or SCENARIOS:
        o = run_scenario(name, root / name, args.tweets, args.rate, args.outage)
        outcomes.append(o)
        print(
            f"{o.scenario:<16}{o.tweets_in:>10}{o.rows_out:>10}{o.lost:>6}{o.duplicated:>6}{o.recover_s:>11}  "
            f"reader {o.reader_reads} reads, {o.reader_errors} errors"
            + (f"; quarantined {o.quarantined} of {o.bad_lines} bad" if o.bad_lines else "")
            + (f"; {o.notes}" if o.notes else ""),
            flush=True,
        )
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes]))
    return 0 if all(o.lost == 0 and o.duplicated == 0 and o.reader_errors == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
