"""The cost of the HTTP layer alone: the service's front with a stub model that answers at once.

Usage: python -m benchmarks.http_layer [--users 64] [--seconds 20]

Serves the real front (:class:`model_api.front.asgi.ServiceApp`: routing, checks, admission, JSON,
metrics) with a constant predictor under granian, one worker, on loopback; Locust sends single
tweets with no pause between requests. Prints requests/s and the worker's CPU time per request:
what every request costs besides the model.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.load_test import ROOT
from harness.processes import free_port, process_tree, wait_for_workers
from sentiment.labels import Prediction
from sentiment.logs import setup_logging


class StubPredictor:
    """Answers every text at once with the same prediction."""

    def predict(self, texts: list[str]) -> list[Prediction]:
        return [Prediction("Positive", 0.9, 0.9) for _ in texts]

    def describe(self) -> dict:
        return {"name": "stub", "version": "0", "precision": "none"}

    def health(self) -> dict:
        return {"status": "ok"}

    def warm_up(self) -> None:
        pass


def create():
    """ASGI factory: the service's front with the stub predictor."""
    from model_api.front.asgi import ServiceApp
    from model_api.front.routes import Service
    from sentiment.config import Config

    return ServiceApp(Service(Config(), StubPredictor()))


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process and its descendants, from /proc."""
    total = 0.0
    for current in process_tree(pid):
        try:
            fields = Path(f"/proc/{current}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def serve(port: int) -> subprocess.Popen:
    """One granian worker serving :func:`create` on ``port``."""
    args = ["--interface", "asgi", "--factory", "--port", str(port), "--no-ws", "benchmarks.http_layer:create"]
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "granian"), *args],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.http_layer", description=__doc__.split("\n")[0])
    p.add_argument("--users", type=int, default=64)
    p.add_argument("--seconds", type=int, default=20)
    args = p.parse_args(argv)
    setup_logging()
    print(f"{'server':<10}{'requests/s':>12}{'CPU ms/request':>16}")
    for server in ("granian",):
        port = free_port()
        service = serve(port)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_workers(url, 1, timeout=60)
            before = cpu_seconds(service.pid)
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    [sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless"]
                    + ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s", "--host", url]
                    + ["--csv", f"{tmp}/l", "--only-summary", "SingleTweetUser"],
                    cwd=ROOT,
                    env=dict(os.environ, PYTHONPATH=str(ROOT), TWEETSENT_LOAD_USER_RATE="0"),
                    check=True,
                    capture_output=True,
                    timeout=args.seconds + 60,
                )
                with open(f"{tmp}/l_stats.csv") as f:
                    stats = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
            cpu = cpu_seconds(service.pid) - before
        finally:
            service.terminate()
            service.wait(timeout=30)
        count = int(stats["Request Count"])
        print(f"{server:<10}{float(stats['Requests/s']):>12.1f}{1000 * cpu / max(count, 1):>16.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
