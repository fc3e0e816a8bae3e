"""Age the pipeline: the real relay, model service, job and dashboard for many micro-batches, measured as they grow.

Usage: python -m benchmarks.aging [--batches 10000] [--every 500] [--rate 20] [--keywords love work day]
       [--trigger S] [--segment-seconds S] [--out DIR] [--resume] [--port-base 18300]

A looping replay of the bundled sample (the tweets that hold a keyword) is relayed at ``--rate`` tweets/s
into the spool; the job scores it through the service each trigger and writes today's ``date=``
partition (a tweet's date is when it was processed), the trends by relay time and the alerts. Every
``--every`` micro-batches (the job's ``batch N: ...`` lines) one row goes to ``OUT/aging.csv``: batch
duration p50/p95 over the window, the p95 of each row's time from ``relayed_at`` to its file
appearing in the output (polled from outside every 0.5 s), files and bytes of each output folder, the
checkpoint and the spool, the resident memory of each part with its children, ``pandas.read_parquet``
of all the tweets and of today's partition, and the dashboard's data time and first render
(:mod:`benchmarks.aging_measure`). At the end (or Ctrl-C) ``OUT/aging.png`` draws every series and a
projection to 30 days at 20 tweets/s is printed (:mod:`benchmarks.aging_report`). ``--resume``
continues a run cut off: the job resumes from its checkpoint, the rows from the CSV.

Trigger and segment default to the live configuration (``stream.trigger_seconds``,
``relay.segment_seconds``); shorter ones age the output faster. Quick mode: ``--batches 60 --every 20``.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.aging_measure import BatchLog, batch_percentiles, dashboard_times, folder_usage, read_times, rss_mib
from benchmarks.aging_report import FOLDERS, PARTS, append_row, plot, projection, read_rows
from benchmarks.steady import ParquetPoller, visible_latencies
from harness.pipeline import Pipeline
from harness.processes import stop_group, wait_until
from sentiment.config import load_config
from sentiment.logs import setup_logging
from stream.query import percentiles

PROJECTION_DAYS, PROJECTION_RATE = 30, 20.0


def build_parser() -> argparse.ArgumentParser:
    config = load_config()
    p = argparse.ArgumentParser(prog="python -m benchmarks.aging", description=__doc__.splitlines()[0])
    p.add_argument("--batches", type=int, default=10_000, help="micro-batches to run (default 10,000)")
    p.add_argument("--every", type=int, default=500, help="a row every N micro-batches (default 500)")
    p.add_argument("--rate", type=float, default=20.0, help="tweets per second relayed (default 20)")
    p.add_argument("--keywords", nargs="+", default=["love", "work", "day"], help="keywords tracked")
    p.add_argument(
        "--trigger", type=float, default=config.stream.trigger_seconds, help="seconds between micro-batches (conf)"
    )
    p.add_argument(
        "--segment-seconds", type=float, default=config.relay.segment_seconds, help="spool segment age (conf)"
    )
    p.add_argument("--precision", default="fp32", help="the service's engine (default fp32: ready at once)")
    p.add_argument("--service-workers", type=int, default=config.service.workers, help="0 = one per core (conf)")
    p.add_argument("--out", type=Path, default=Path("/tmp/tweetsent-aging"), help="the run's folder")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (its CSV and checkpoint)")
    p.add_argument(
        "--port-base",
        type=int,
        default=18300,
        help="loopback ports from here: the service, the dashboard, Spark's UI, driver and block manager (+0..+4)",
    )
    p.add_argument("--no-dashboard", action="store_true", help="no dashboard server, data time and render")
    p.add_argument("--stall-seconds", type=float, default=300.0, help="fail when no batch is reported this long")
    return p


@dataclass
class Run:
    """One aging run: its pipeline, the job's batches, the output's poller and the rows so far."""

    args: argparse.Namespace
    pipeline: Pipeline
    log: BatchLog
    poller: ParquetPoller
    rows: list[dict] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    timed: set[Path] = field(default_factory=set)
    wall_offset: float = 0.0  # a resumed run's wall time so far

    @property
    def csv(self) -> Path:
        return self.args.out / "aging.csv"

    @property
    def work(self) -> Path:
        return self.pipeline.work


def settings(args: argparse.Namespace) -> dict[str, str]:
    """The ``TWEETSENT_*`` settings of the parts: the trigger, segment and engine of this run."""
    config = load_config()
    ui, driver, blocks = args.port_base + 2, args.port_base + 3, args.port_base + 4
    spark_ports = f"--conf spark.ui.port={ui} --conf spark.driver.port={driver} --conf spark.blockManager.port={blocks}"
    return {
        "PYSPARK_SUBMIT_ARGS": f"{spark_ports} pyspark-shell",
        "TWEETSENT_STREAM__TRIGGER_SECONDS": str(args.trigger),
        "TWEETSENT_STREAM__MAX_FILES_PER_TRIGGER": str(config.stream.max_files_per_trigger),
        "TWEETSENT_RELAY__SEGMENT_SECONDS": str(args.segment_seconds),
        "TWEETSENT_SERVICE__PRECISION": args.precision,
        "TWEETSENT_SERVICE__WORKERS": str(args.service_workers),
    }


def start_parts(run: Run) -> None:
    """The service (healthy), the relay, the job and the dashboard (answering), in ``run``'s working folder."""
    p, args = run.pipeline, run.args
    p.start_service()
    p.start_relay("replay", "--loop", "--rate", str(args.rate), "--track", *args.keywords)
    p.start(
        "job",
        "stream",
        *("--service-url", p.service_url, "--trigger", str(args.trigger), "--trends-time", "relayed_at"),
        *("--track", *args.keywords),
    )
    if not args.no_dashboard:
        import requests

        port = str(args.port_base + 1)
        p.start("dashboard", "dashboard", "--output-root", str(run.work), "--port", port)
        url = f"http://127.0.0.1:{port}/_stcore/health"

        def answers() -> bool:
            try:
                return requests.get(url, timeout=2).ok
            except requests.RequestException:
                return False

        wait_until(answers, 120, f"the dashboard at {url}")


def latency_p95(run: Run) -> float:
    """p95 of the seconds from ``relayed_at`` to its file appearing, over the files first seen since the last row."""
    new = {path: seen for path, seen in list(run.poller.seen.items()) if path not in run.timed}
    run.timed |= set(new)
    try:
        _, latency = visible_latencies(new, run.poller.stamps)
    except OSError:
        return float("nan")  # a file replaced while read: the next row counts it
    finally:
        for path in new:  # the poller keeps a file's stamps until they are counted, not for the whole run
            run.poller.stamps.pop(path, None)
    return round(percentiles(latency.tolist(), (0.95,))[0], 2) if len(latency) else float("nan")


def measure(run: Run, window: list) -> dict:
    """One row: the job's window of batches, the folders, the memory, the read times and the dashboard."""
    work, procs = run.work, run.pipeline.procs
    p50, p95 = batch_percentiles(window)
    row = {
        "batches": len(run.log.batches),
        "last_batch_id": run.log.batches[-1].batch_id if run.log.batches else "",
        "wall_s": round(run.wall_offset + time.monotonic() - run.started, 1),
        "rows_total": sum(b.rows for b in run.log.batches),
        "batch_p50_s": round(p50, 3),
        "batch_p95_s": round(p95, 3),
        "latency_p95_s": latency_p95(run),
    }
    folders = {f: work / f for f in FOLDERS} | {"spool_done": work / "spool-done"}
    for name, folder in folders.items():
        row[f"{name}_files"], row[f"{name}_bytes"] = folder_usage(folder)
    for part in PARTS:
        proc = procs.get(part)
        row[f"rss_{part}_mib"] = rss_mib(proc.pid if proc is not None and proc.poll() is None else None)
    row |= read_times(work / "tweets")
    if not run.args.no_dashboard:
        row |= dashboard_times(work)
    return row


def wait_for_batches(run: Run, target: int) -> list:
    """Wait until the job has reported ``target`` batches in all; return those reported since the last row.

    Raises:
        RuntimeError: the job exited, or reported no batch for ``--stall-seconds`` (with its log's end).
    """
    window, last_new = [], time.monotonic()
    while len(run.log.batches) < target:
        new = run.log.read_new()
        window += new
        last_new = time.monotonic() if new else last_new
        job = run.pipeline.procs["job"]
        if job.poll() is not None or time.monotonic() - last_new > run.args.stall_seconds:
            why = f"exited with {job.returncode}" if job.poll() is not None else "reported no batch"
            raise RuntimeError(f"the job {why} at batch {len(run.log.batches)}:\n{run.pipeline.log('job')[-3000:]}")
        time.sleep(0.5)  # the job reports a batch every trigger at most
    return window


def age(run: Run) -> None:
    """Rows every ``--every`` batches until ``--batches``, each appended to the CSV and printed as it is taken."""
    args = run.args
    run.log.read_new()  # a resumed run's earlier batches, from the job's log
    while len(run.log.batches) < args.batches:
        target = min(args.batches, (len(run.log.batches) // args.every + 1) * args.every)
        window = wait_for_batches(run, target)
        row = measure(run, window)
        run.rows.append(row)
        append_row(run.csv, row)
        print(json.dumps(row), flush=True)


def report(run: Run) -> None:
    """The picture of every series and the projection, from every row of the CSV (a resumed run's too)."""
    rows = read_rows(run.csv)
    if not rows:
        print("aging: no row yet; nothing to draw")
        return
    plot(rows, run.args.out / "aging.png")
    print(f"aging: {len(rows)} row(s) in {run.csv}, the series drawn in {run.args.out / 'aging.png'}")
    config = load_config()
    retention = (config.relay.retention_hours, config.relay.retention_bytes)
    print(projection(rows, PROJECTION_DAYS, PROJECTION_RATE, config.stream.trigger_seconds, retention))


def prepare(args: argparse.Namespace) -> Run:
    """The run's folder (a fresh one, or the one ``--resume`` continues) and its pipeline, not started yet.

    Raises:
        SystemExit: a fresh run in a folder that holds one already, or ``--resume`` with nothing to resume.
    """
    csv, work = args.out / "aging.csv", args.out / "work"
    if args.resume and not csv.exists():
        raise SystemExit(f"error: --resume: no run in {args.out} (no aging.csv); start one without --resume")
    if not args.resume and (csv.exists() or work.exists()):
        raise SystemExit(f"error: {args.out} holds a run already; --resume it or choose another --out")
    args.out.mkdir(parents=True, exist_ok=True)
    pipeline = Pipeline(work, service_port=args.port_base)
    pipeline.env.update(settings(args))
    rows = read_rows(csv)
    run = Run(args, pipeline, BatchLog(work / "job.log"), ParquetPoller(work / "tweets", interval=0.5), rows)
    run.wall_offset = rows[-1]["wall_s"] if rows else 0.0
    return run


def describe(args: argparse.Namespace) -> str:
    config = load_config()
    live = args.trigger == config.stream.trigger_seconds and args.segment_seconds == config.relay.segment_seconds
    return (
        f"aging: {args.batches:,} micro-batches, a row every {args.every}; {args.rate:g} tweets/s of "
        f"{', '.join(args.keywords)}; trigger {args.trigger:g} s, segments {args.segment_seconds:g} s "
        f"({'the live configuration' if live else 'shorter than the live configuration, to age faster'}: "
        f"trigger {config.stream.trigger_seconds:g} s, segments {config.relay.segment_seconds:g} s); "
        f"service engine {args.precision}; run folder {args.out}" + (" (resumed)" if args.resume else "")
    )


def stop_parts(pipeline: Pipeline) -> None:
    """Stop every part started, the relay first and the service last (a batch in flight is not failed by
    a service gone): the job with SIGTERM (its batch finished), SIGKILL after 60 s; the others' process
    groups with SIGKILL."""
    order = ("relay", "job", "dashboard")
    for name in sorted(pipeline.procs, key=lambda n: order.index(n) if n in order else len(order)):
        proc = pipeline.procs[name]
        try:
            pipeline.kill(name, signal.SIGTERM if name == "job" else signal.SIGKILL)
        except subprocess.TimeoutExpired:
            stop_group(proc)
            proc.wait()


def _terminate(signum: int, frame) -> None:
    raise KeyboardInterrupt  # Ctrl-C or SIGTERM: every part stopped, the rows kept


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.batches < 1 or args.every < 1 or args.rate <= 0:
        raise SystemExit("error: --batches and --every must be at least 1, and --rate above 0")
    setup_logging()
    run = prepare(args)
    print(describe(args), flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):  # SIGINT too: a shell starts a background job with it ignored
        signal.signal(sig, _terminate)
    status = 0
    try:
        start_parts(run)
        run.started = time.monotonic()
        with run.poller:
            age(run)
    except KeyboardInterrupt:
        print("aging: stopped; the rows so far are kept (--resume continues)", file=sys.stderr)
        status = 130
    except (RuntimeError, TimeoutError) as e:
        print(f"aging: {e}", file=sys.stderr)
        status = 1
    finally:
        stop_parts(run.pipeline)
    report(run)
    return status


if __name__ == "__main__":
    raise SystemExit(main())
