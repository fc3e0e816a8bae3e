"""Measure the pipeline on this machine: the service alone, the whole path, and the time to a first row.

Usage: python -m benchmarks.pipeline [--tweets N] [--rate R] [--warm-up N] [--model DIR] [--service-only] [--first-row]
       [--steady-rate R [--steady-seconds S]]
       [--master local[2]|cluster|spark://HOST:PORT ...] [--replicas N ...] [--floor]

1. Service: ``POST /predict/batch`` of 256 real tweets at a time, one client, repeated; tweets/s.
2. End to end: the relay writing the spool (as fast as it can, or paced at ``--rate``), a local[2]
   Spark job and the service (a subprocess); tweets/s from the first write to the last commit, and
   the time from the relay accepting each tweet to its batch being committed in parquet (p50, p95).
   With ``--warm-up N`` the first N tweets (same rate) start Spark's Python workers and fill its
   caches, and only the tweets after them are measured: the sustained figures. Without it the
   figures include the job's start (see ``--first-row`` for that alone).
3. ``--steady-rate R`` (``--steady-seconds S``, 60 by default): then, by the same running job, a steady
   stream of R tweets/s for S seconds, at a rate the machine sustains, timed from outside the job:
   each row from its ``relayed_at`` to the moment its parquet file appeared in the output folder
   (polled every 50 ms), p50 and p95 (:mod:`benchmarks.steady`). Phase 2 without ``--rate`` is a
   backlog: its latency is the time to drain it, not a streaming latency. A rate the job cannot keep
   up with (latency growing along the run) fails the phase rather than printing a figure.
4. ``--first-row``: seconds from launching ``./run_pipeline.sh`` to the first parquet file.

Scaling, side by side in one run: each ``--master`` (``local[2]``; ``cluster``: a standalone master
and two one-core workers started on free ports by ``scripts/spark_cluster.sh``; or a master URL)
times each ``--replicas`` count (that many services, the cores split between them, the job spreading
over them); the service figure is then all replicas at once, one client each. ``--floor`` adds, per
master, a run against ``benchmarks/floor_server.py``, which answers at once: the Spark side alone.

Figures go to stdout as text and, with ``--json``, as one JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from benchmarks.steady import drive_or_fail, steady_stream
from harness.processes import free_port, wait_for_workers
from ingest.relay import SpoolTicker, write_records
from ingest.replay import BUNDLED_SAMPLE, replay_tweets
from ingest.spool import Record, Spool
from sentiment.config import PROJECT_ROOT, Config
from sentiment.logs import setup_logging
from stream.query import JobConfig, JobStats, build_query, percentiles, read_source
from stream.scoring import ScoringOptions
from stream.session import build_spark
from stream.trends import TrendsJob, build_trends_query


def start_service(
    port: int, workers: int | None = None, model: str | None = None, torch_threads: int | None = None
) -> subprocess.Popen:
    """The service as configured (engine, workers, model), on a loopback port."""
    extra = (["--workers", str(workers)] if workers else []) + (["--model", model] if model else [])
    env = dict(os.environ, **({"TWEETSENT_SERVICE__TORCH_THREADS": str(torch_threads)} if torch_threads else {}))
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_api", "--port", str(port), *extra],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # Every worker answers before a figure is taken (service.workers = 0 means one per core, not none).
        wait_for_workers(f"http://127.0.0.1:{port}", workers or Config().service.worker_processes)
    except RuntimeError:
        proc.kill()
        raise
    return proc


def bench_service(url: str, texts: list[str], batch: int = 256, repeats: int = 3) -> dict:
    rates = []
    with requests.Session() as session:
        for _ in range(repeats):
            started = time.perf_counter()
            for i in range(0, len(texts), batch):
                session.post(
                    f"{url}/predict/batch", json={"texts": texts[i : i + batch]}, timeout=300
                ).raise_for_status()
            rates.append(len(texts) / (time.perf_counter() - started))
    return {
        "tweets": len(texts),
        "batch": batch,
        "runs_tweets_per_s": [round(r, 1) for r in rates],
        "median_tweets_per_s": round(statistics.median(rates), 1),
    }


def start_floor(port: int) -> subprocess.Popen:
    """``benchmarks/floor_server.py`` under granian: answers at once, no model."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port)]
        + ["benchmarks.floor_server:app"],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_workers(f"http://127.0.0.1:{port}", 1)
    return proc


def bench_replicas(urls: list[str], texts: list[str], batch: int = 256, repeats: int = 3) -> dict:
    """Every replica at once, one client each sending all ``texts``: tweets/s of them all."""
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(urls)) as pool:
            # list() re-raises a client's error: a replica that failed gives no figure, not a fast one.
            list(pool.map(lambda u: bench_service(u, texts, batch, 1), urls))
        rates.append(len(texts) * len(urls) / (time.perf_counter() - started))
    return {
        "replicas": len(urls),
        "runs_tweets_per_s": [round(r, 1) for r in rates],
        "median_tweets_per_s": round(statistics.median(rates), 1),
    }


def measure_stream(query, stats: JobStats, spool: Spool, records: list[Record], warm_up: int, rate: float) -> dict:
    """Send the first ``warm_up`` records and wait for them, then the rest (the measured ones): their figures.

    Raises:
        RuntimeError: when the query failed or did not handle every tweet in time (no figure).
    """
    if warm_up:
        write_records(records[:warm_up], spool, rate)
        drive_or_fail(query, stats, warm_up, "the warm-up")
    with stats.lock:
        stats.latencies.clear()
        rows_before, batches_before = stats.rows, stats.batches
    started = time.monotonic()
    feeder = threading.Thread(target=write_records, args=(records[warm_up:], spool, rate), daemon=True)
    feeder.start()
    drive_or_fail(query, stats, len(records), "the measured tweets")
    elapsed = time.monotonic() - started
    with stats.lock:
        p50, p95 = percentiles(list(stats.latencies), (0.5, 0.95))
        rows, batches = stats.rows - rows_before, stats.batches - batches_before
    return {
        "warm_up_tweets": warm_up,
        "tweets": rows,
        "seconds": round(elapsed, 1),
        "tweets_per_s": round(rows / elapsed, 1),
        "batches": batches,
        "latency_p50_s": round(p50, 2),
        "latency_p95_s": round(p95, 2),
        "offered_rate": rate or "max",
    }


def sample_records(n: int) -> list[Record]:
    """``n`` tweets of the bundled sample (looped) as the relay spools them."""
    tweets = replay_tweets(BUNDLED_SAMPLE, loop=True, limit=n)
    return [Record(t.to_json_line().decode("utf-8").rstrip("\n")) for t in tweets]


def bench_job_config(tmp: Path, url: str, trigger: float) -> JobConfig:
    """The job as configured (request batch and concurrency), its folders in ``tmp``."""
    stream = Config().stream
    return JobConfig(
        spool=str(tmp / "spool"),
        output=str(tmp / "tweets"),
        quarantine=str(tmp / "q"),
        checkpoint=str(tmp / "ck"),
        trigger_seconds=trigger,
        scoring=ScoringOptions(url, batch_size=stream.request_batch, concurrency=stream.request_concurrency),
        model_version="bench",
    )


def bench_end_to_end(
    url: str,
    n: int,
    trigger: float,
    rate: float = 0.0,
    warm_up: int = 0,
    master: str = "local[2]",
    trends: bool = False,
    steady: tuple[float, float] | None = None,
) -> dict:
    """The whole path: ``warm_up`` then ``n`` tweets sent at ``rate`` (0: at once, a backlog to drain); with
    ``steady`` = (tweets/s, seconds), then a steady stream whose rows are timed as a reader sees them
    (:mod:`benchmarks.steady`), by the same running job."""
    spark = build_spark(Config(), master=master, app_name="tweet-sentiment-bench", ui=False)
    spark.sparkContext.setLogLevel("ERROR")
    steady_n = round(steady[0] * steady[1]) if steady else 0
    records = sample_records(warm_up + n + steady_n)
    tmp = Path(tempfile.mkdtemp(prefix="tweetsent-bench-"))
    relay = Config().relay
    config = bench_job_config(tmp, url, trigger)
    trends_job = None
    if trends:  # in the job's config too: the tweets' sink feeds the trends query (stream.trends)
        trends_job = TrendsJob(
            config.output, str(tmp / "ck-trends"), Config().trends, str(tmp / "trends"), str(tmp / "alerts")
        )
        config = dataclasses.replace(config, trends=trends_job)
    stats = JobStats()
    spool = Spool(config.spool, segment_records=relay.segment_records, segment_seconds=relay.segment_seconds)
    spool.open()
    trends_query = None
    with SpoolTicker(spool):
        query = build_query(read_source(spark, config), config, stats).start()
        if trends_job is not None:
            trends_query = build_trends_query(spark, trends_job, trigger, config.max_files_per_trigger).start()
        try:
            result = measure_stream(query, stats, spool, records[: warm_up + n], warm_up, rate)
            if steady_n:
                rest = records[warm_up + n :]
                result["steady"] = steady_stream(query, stats, spool, rest, steady[0], config.output, warm_up + n)
        finally:
            query.stop()
            if trends_query is not None:
                trends_query.stop()
    spark.stop()
    return {"master": master, **result, "trigger_s": trigger, "trends_query": trends}


def bench_first_row() -> dict:
    """Seconds from launching ``./run_pipeline.sh`` (this tree) to its first parquet row."""
    from benchmarks.startup import first_row

    log = Path(tempfile.mkdtemp(prefix="tweetsent-first-")) / "run_pipeline.log"
    port = free_port()
    return {"seconds_to_first_parquet_row": first_row(PROJECT_ROOT, port, {}, log, timeout=600)}


def scaling(args: argparse.Namespace, texts: list[str]) -> list[dict]:
    """Each master times each replica count (and the floor), printed as a table as they finish."""
    from harness.pipeline import Cluster

    masters, counts, cpus = args.master or ["local[2]"], args.replicas or [1], os.cpu_count() or 1
    clusters: dict[str, Cluster] = {}
    runs: list[dict] = []
    print(f"{'master':<28}{'service':<12}{'service t/s':>12}{'pipeline t/s':>14}{'p50 s':>8}{'p95 s':>8}", flush=True)

    def row(master: str, service: str, service_rate: float | None, e2e: dict) -> None:
        run = {"master": master, "service": service, "service_tweets_per_s": service_rate, **e2e}
        runs.append(run)
        rate = f"{service_rate:>12}" if service_rate is not None else f"{'-':>12}"
        print(
            f"{master:<28}{service:<12}{rate}{e2e['tweets_per_s']:>14}{e2e['latency_p50_s']:>8}"
            f"{e2e['latency_p95_s']:>8}",
            flush=True,
        )

    try:
        for master in masters:
            url_of_master = master
            if master == "cluster":
                clusters[master] = Cluster(Path(tempfile.mkdtemp(prefix="tweetsent-cluster-")))
                clusters[master].start()
                url_of_master = clusters[master].url

            def e2e(url: str, _master: str = url_of_master) -> dict:
                return bench_end_to_end(url, args.tweets, args.trigger, args.rate, args.warm_up, master=_master)

            for count in counts:
                ports = [free_port() for _ in range(count)]
                threads = max(1, cpus // count)
                services = [start_service(port, model=args.model, torch_threads=threads) for port in ports]
                urls = [f"http://127.0.0.1:{port}" for port in ports]
                try:
                    served = bench_replicas(urls, texts)["median_tweets_per_s"]
                    row(master, f"{count} x {threads} thr", served, e2e(",".join(urls)))
                finally:
                    for s in services:
                        s.terminate()
                        s.wait(timeout=30)
            if args.floor:
                port = free_port()
                floor = start_floor(port)
                try:
                    row(master, "floor", None, e2e(f"http://127.0.0.1:{port}"))
                finally:
                    floor.terminate()
                    floor.wait(timeout=30)
    finally:
        for cluster in clusters.values():
            cluster.stop()
    return runs


def steady(args: argparse.Namespace) -> tuple[float, float] | None:
    """``--steady-rate`` and ``--steady-seconds``, when a steady stream was asked for."""
    return (args.steady_rate, args.steady_seconds) if args.steady_rate else None


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; a phase that fails (a service that never served, a client's error, a job
    that did not handle every tweet) stops it with exit status 1 and no figure for that phase."""
    try:
        return run(argv)
    except (RuntimeError, requests.RequestException) as e:
        print(f"error: {e}; no figure for this phase", file=sys.stderr, flush=True)
        return 1


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pipeline", description=__doc__.split("\n")[0])
    p.add_argument("--tweets", type=int, default=6000, help="tweets through the whole pipeline")
    p.add_argument("--trigger", type=float, default=1.0, help="seconds between micro-batches")
    p.add_argument("--rate", type=float, default=0.0, help="tweets/s the relay offers (0: as fast as possible)")
    p.add_argument(
        "--warm-up", type=int, default=0, help="tweets sent (at --rate) and committed before the measured ones"
    )
    p.add_argument(
        "--steady-rate",
        type=float,
        default=0.0,
        help="after the tweets above, a steady stream at this many tweets/s (0: none), timed per row as a reader "
        "sees it in parquet",
    )
    p.add_argument("--steady-seconds", type=float, default=60.0, help="how long the steady stream lasts (default 60)")
    p.add_argument(
        "--trends",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the trends query (windows per keyword, alerts) beside the job",
    )
    p.add_argument("--model", help="the service's model directory or hub name (default: service.model)")
    p.add_argument("--service-only", action="store_true")
    p.add_argument("--first-row", action="store_true", help="also time ./run_pipeline.sh to its first row")
    p.add_argument(
        "--master",
        action="append",
        help="local[2] (default), cluster (a standalone master and 2 workers started here) or a master URL; repeatable",
    )
    p.add_argument("--replicas", type=int, action="append", help="model-service replicas (default 1); repeatable")
    p.add_argument("--floor", action="store_true", help="also run each master against a server with no model")
    p.add_argument("--json", action="store_true")
    return p


def one_service(args: argparse.Namespace, texts: list[str]) -> dict:
    """The service's ``/predict/batch`` figure and, unless ``--service-only``, the end-to-end one."""
    results = {}
    port = free_port()
    service = start_service(port, model=args.model)
    url = f"http://127.0.0.1:{port}"
    try:
        results["service_predict_batch"] = bench_service(url, texts)
        print(f"service /predict/batch: {results['service_predict_batch']}", flush=True)
        if not args.service_only:
            results["end_to_end"] = bench_end_to_end(
                url, args.tweets, args.trigger, args.rate, args.warm_up, trends=args.trends, steady=steady(args)
            )
            print(f"end to end: {results['end_to_end']}", flush=True)
    finally:
        service.terminate()
        service.wait(timeout=30)
    return results


def run(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    setup_logging()
    if any(r < 1 for r in args.replicas or []):
        p.error("--replicas must be at least 1")
    if args.steady_rate < 0 or args.steady_seconds <= 0:
        p.error("--steady-rate must be at least 0 and --steady-seconds above 0")
    if args.steady_rate and (args.service_only or args.master or args.replicas or args.floor):
        p.error(
            "--steady-rate runs after the end-to-end phase of one local service: not with --service-only, "
            "--master, --replicas or --floor"
        )

    texts = [t.text for t in replay_tweets(BUNDLED_SAMPLE)]
    results: dict = {"cpus": os.cpu_count(), "runs": []}
    if args.master or args.replicas or args.floor:
        results["runs"] = scaling(args, texts)
    else:
        results.update(one_service(args, texts))
    if args.first_row:
        results["first_row"] = bench_first_row()
        print(f"run_pipeline.sh: {results['first_row']}", flush=True)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
