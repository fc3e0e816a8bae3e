"""Benchmark the model service against the usual way of serving the same model, side by side.

Usage: python -m benchmarks.service_vs_pipeline [--model DIR] [--tweets N] [--precision NAME] [--workers N]
       [--clients N] [--json]

On the same real tweets (the shared data's held-out test rows, else the bundled sample), in one
run, each phase in its own process (so that peak memory is its own):

1. ``pipeline-single``: transformers ``pipeline("text-classification")`` called once per text;
2. ``pipeline-batched``: the same pipeline given the list, ``batch_size=64``;
3. ``engine``: our predictor in-process (token-length-bucketed batches, the service's engine);
4. ``service``: our service (as configured: workers, engine), ``POST /predict/batch``
   with 256 texts per request from ``--clients`` concurrent clients.

It prints tweets/s, p50/p95/p99 latency per call (a call is one text, one pipeline batch or one
request) and peak resident memory, with each figure's ratio to ``pipeline-single``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import subprocess
import sys
import time
from pathlib import Path

from ingest.replay import BUNDLED_SAMPLE
from model_api.model.predictor import DEFAULT_MODEL_DIR
from sentiment.config import PRECISIONS, load_config
from sentiment.logs import setup_logging


def _texts(n: int) -> list[str]:
    from experiments.data import default_data_dir, default_training_files, load_split
    from sentiment.sentiment140 import iter_rows

    if default_data_dir() is not None:
        texts = load_split(default_training_files()).texts["test"]
    else:
        texts = [r.text for r in iter_rows(BUNDLED_SAMPLE)]
    return (texts * (n // len(texts) + 1))[:n]


def _percentiles(latencies: list[float]) -> dict:
    ordered = sorted(latencies)

    def q(p: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"p50_ms": q(0.5), "p95_ms": q(0.95), "p99_ms": q(0.99)}


def _time_pipeline(name: str, model: str, texts: list[str]) -> tuple[float, list[float]]:
    """Seconds for the Hugging Face pipeline to label ``texts`` (one by one, or 64 at a time), and each call's."""
    import torch
    from transformers import pipeline

    from sentiment.cleaning import normalise_all

    latencies: list[float] = []
    # fp32, as the model is trained: the checkpoint is stored in fp16, which is slow on a CPU.
    clf = pipeline("text-classification", model=model, tokenizer=model, device=-1, dtype=torch.float32)
    prepared = normalise_all(texts, "light")
    clf(prepared[:8])
    started = time.perf_counter()
    if name == "pipeline-single":
        for t in prepared:
            t0 = time.perf_counter()
            clf(t, truncation=True)
            latencies.append(time.perf_counter() - t0)
    else:
        for i in range(0, len(prepared), 64):
            t0 = time.perf_counter()
            clf(prepared[i : i + 64], batch_size=64, truncation=True)
            latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def _time_engine(model: str, precision: str, texts: list[str]) -> tuple[float, list[float]]:
    """Seconds for the service's predictor, in this process, to score ``texts`` 256 at a time, and each call's."""
    from model_api.model.predictor import SentimentPredictor

    latencies: list[float] = []
    predictor = SentimentPredictor.from_pretrained(model, precision=precision)
    predictor.warm_up()
    started = time.perf_counter()
    for i in range(0, len(texts), 256):
        t0 = time.perf_counter()
        predictor.predict(texts[i : i + 256])
        latencies.append(time.perf_counter() - t0)
    return time.perf_counter() - started, latencies


def _time_service(url: str, clients: int, texts: list[str]) -> tuple[float, list[float]]:
    """Seconds for ``clients`` concurrent clients to score ``texts`` through ``/predict/batch``, and each request's."""
    import threading

    import requests

    latencies: list[float] = []
    chunks = [texts[i : i + 256] for i in range(0, len(texts), 256)]
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not chunks:
                        return
                    chunk = chunks.pop()
                t0 = time.perf_counter()
                session.post(f"{url}/predict/batch", json={"texts": chunk}, timeout=300).raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - t0)

    with requests.Session() as session:
        for _ in range(2 * clients):  # every worker answers once before the clock starts
            session.post(f"{url}/predict/batch", json={"texts": texts[:64]}, timeout=60).raise_for_status()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started, latencies


def _phase(name: str, model: str, n: int, precision: str, url: str | None, clients: int, out: mp.Queue) -> None:
    import torch

    torch.set_num_threads(torch.get_num_threads())
    texts = _texts(n)
    if name.startswith("pipeline"):
        elapsed, latencies = _time_pipeline(name, model, texts)
    elif name == "engine":
        elapsed, latencies = _time_engine(model, precision, texts)
    else:
        elapsed, latencies = _time_service(url, clients, texts)
    out.put(
        {
            "phase": name,
            "tweets": len(texts),
            "tweets_per_s": round(len(texts) / elapsed, 1),
            **_percentiles(latencies),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    )


def run_phase(name: str, model: str, n: int, precision: str, url: str | None = None, clients: int = 1) -> dict:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_phase, args=(name, model, n, precision, url, clients, out))
    proc.start()
    result = out.get()
    proc.join()
    return result


def _tree_peak_rss_mb(pid: int) -> int:
    """Sum of the peak resident memory (VmHWM) of a process and its descendants."""
    from harness.processes import process_tree

    total = 0
    for current in process_tree(pid):
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)
    return round(total / 1024)


def start_service(model: str, precision: str, workers: int) -> tuple[subprocess.Popen, str]:
    import os

    from harness.processes import free_port, wait_for_workers

    port = free_port()
    env = dict(os.environ, TWEETSENT_SERVICE__PRECISION=precision)
    proc = subprocess.Popen(
        [sys.executable, "-m", "model_api", "--port", str(port), "--model", model, "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_workers(url, workers)
    except RuntimeError:
        proc.kill()
        raise
    return proc, url


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.service_vs_pipeline", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    p.add_argument("--tweets", type=int, default=1000, help="tweets per phase")
    p.add_argument("--precision", choices=PRECISIONS, help="engine (default: service.precision of the config)")
    p.add_argument("--workers", type=int, help="service worker processes (default: service.workers)")
    p.add_argument(
        "--clients",
        type=int,
        help="concurrent clients of the service phase (default: 2 per worker, as the Spark job's "
        "stream.request_concurrency: one request is read while the other is computed)",
    )
    p.add_argument("--phases", default="pipeline-single,pipeline-batched,engine,service", help="subset to run")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    setup_logging()
    phases = args.phases.split(",")
    service_config = load_config().service
    args.precision = args.precision or service_config.precision
    args.workers = args.workers or service_config.workers
    args.clients = args.clients or 2 * args.workers
    rows = []
    for name in ("pipeline-single", "pipeline-batched", "engine"):
        if name in phases:
            rows.append(run_phase(name, args.model, args.tweets, args.precision))
            print(json.dumps(rows[-1]), flush=True)
    if "service" in phases:
        service, url = start_service(args.model, args.precision, args.workers)
        try:
            row = run_phase("service", args.model, args.tweets, args.precision, url, args.clients)
            row["peak_rss_mb"] = _tree_peak_rss_mb(service.pid)  # the server's, not the client's
            rows.append(row)
            print(json.dumps(rows[-1]), flush=True)
        finally:
            service.terminate()
            service.wait(timeout=30)
    base = rows[0]["tweets_per_s"]
    print(f"\n{'phase':<17}{'tweets/s':>10}{'x base':>8}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'peak MB':>9}")
    for r in rows:
        print(
            f"{r['phase']:<17}{r['tweets_per_s']:>10.1f}{r['tweets_per_s'] / base:>8.2f}{r['p50_ms']:>9.1f}"
            f"{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['peak_rss_mb']:>9}"
        )
    print(
        f"(engine {args.precision}, {args.tweets} tweets per phase, service with {args.workers} worker(s) and "
        f"{args.clients} client(s); the service's peak memory is its process tree: server, workers, model processes)"
    )
    if args.json:
        print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
