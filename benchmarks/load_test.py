"""Load-test the model service with Locust, headless, on loopback, bounded in time.

Usage: python -m benchmarks.load_test [--scenario single|batch|floor] [--users 500] [--spawn-rate 50]
       [--user-rate 1.0] [--aligned] [--seconds 60] [--locust-processes N] [--workers N]
       [--model DIR] [--out DIR]

Starts ``python -m model_api`` on a free 127.0.0.1 port, runs Locust against it, then prints
requests/s, p50/p95/p99 and failures, over the whole run and over its steady state (after the
ramp-up), and writes Locust's CSVs, the service's /metrics and a latency-over-time PNG.

``--scenario floor`` sends the single-tweet users to ``benchmarks/floor_server.py`` instead, which
answers at once: the latency Locust and loopback add by themselves. One Locust process with 500
users adds tens of milliseconds (its users wait for their turn in one event loop);
``--locust-processes N`` spreads the users over N processes, at the cost of their CPU, which the
service on the same cores then lacks.

Each single-tweet user sends ``--user-rate`` requests per second. With no pause between requests
(``--user-rate 0``) 500 users keep 500 requests in flight whatever the service does, so by
Little's law the latency is 500 / throughput: a closed loop measures capacity, not latency.
Paced users start at random phases of their period, as independent users would; ``--aligned``
keeps Locust's own start, where the users spawned in one step send in the same instant, every
period (see ``benchmarks/locustfile.py``).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import requests

from harness.processes import free_port, wait_for_workers
from sentiment.logs import setup_logging

ROOT = Path(__file__).resolve().parents[1]


def plot(history_csv: Path, png: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in csv.DictReader(history_csv.open()) if r["Name"] == "Aggregated"]
    if not rows:
        return
    t0 = int(rows[0]["Timestamp"])
    t = [int(r["Timestamp"]) - t0 for r in rows]
    fig, ax = plt.subplots(figsize=(8, 4))
    for col, label in (("50%", "p50"), ("95%", "p95"), ("99%", "p99")):
        ax.plot(t, [float(r[col]) if r[col] not in ("", "N/A") else float("nan") for r in rows], label=label)
    ax.set_xlabel("seconds")
    ax.set_ylabel("latency (ms)")
    ax2 = ax.twinx()
    ax2.plot(t, [float(r["Requests/s"]) for r in rows], color="grey", alpha=0.5, label="requests/s")
    ax2.set_ylabel("requests/s")
    ax.set_title(title, fontsize=9)
    fig.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def steady_state(history_csv: Path, ramp_seconds: float) -> dict | None:
    """Throughput and latency after the ramp-up, from Locust's cumulative history rows."""
    rows = [r for r in csv.DictReader(history_csv.open()) if r["Name"] == "Aggregated"]
    if not rows:
        return None
    t0 = int(rows[0]["Timestamp"])
    after = [r for r in rows if int(r["Timestamp"]) - t0 >= ramp_seconds]
    if len(after) < 2:
        return None
    first, last = after[0], after[-1]
    seconds = int(last["Timestamp"]) - int(first["Timestamp"])
    count = int(last["Total Request Count"]) - int(first["Total Request Count"])
    p99 = [float(r["99%"]) for r in after if r["99%"] not in ("", "N/A")]
    p50 = [float(r["50%"]) for r in after if r["50%"] not in ("", "N/A")]
    return {
        "from_s": int(first["Timestamp"]) - t0,
        "requests_per_s": count / seconds if seconds else float("nan"),
        "failures": int(last["Total Failure Count"]) - int(first["Total Failure Count"]),
        "p50_ms": sorted(p50)[len(p50) // 2] if p50 else None,
        "p99_ms": max(p99) if p99 else None,
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks.load_test", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", choices=("single", "batch", "floor"), default="single")
    p.add_argument("--users", type=int, default=500)
    p.add_argument("--spawn-rate", type=float, default=50)
    p.add_argument("--user-rate", type=float, default=1.0, help="requests/s per single-tweet user; 0 = no pause")
    p.add_argument(
        "--aligned", action="store_true", help="paced users keep Locust's spawn phases (bursts) instead of random ones"
    )
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument(
        "--locust-processes",
        type=int,
        default=1,
        help="Locust processes sharing the users (its --processes); one process adds its own latency at 500 users",
    )
    p.add_argument("--workers", type=int, help="service workers (default: service.workers of the config)")
    p.add_argument("--model", help="model directory or hub name (default: service.model, the bundled model)")
    p.add_argument("--out", type=Path, default=ROOT / "output" / "load_tests")
    return p


def service_command(args: argparse.Namespace, port: int) -> list[str]:
    """The Python arguments of the server under test: the service, or the floor server with no model."""
    if args.scenario == "floor":
        return ["-m", "granian", "--interface", "asgi", "--port", str(port), "benchmarks.floor_server:app"]
    command = ["-m", "model_api", "--port", str(port), "--workers", str(args.workers)]
    return command + (["--model", args.model] if args.model else [])


def run_locust(args: argparse.Namespace, url: str, out: Path) -> None:
    """Run Locust headless against ``url`` for ``args.seconds``; its CSVs and log go to ``out``."""
    user = "BatchUser" if args.scenario == "batch" else "SingleTweetUser"
    cmd = [sys.executable, "-m", "locust", "-f", str(ROOT / "benchmarks" / "locustfile.py"), "--headless"]
    cmd += ["-u", str(args.users), "-r", str(args.spawn_rate), "-t", f"{args.seconds}s", "--host", url]
    cmd += ["--csv", str(out / "locust"), "--csv-full-history", "--only-summary", "--stop-timeout", "10"]
    cmd += [*(["--processes", str(args.locust_processes)] if args.locust_processes > 1 else []), user]
    env = dict(
        os.environ,
        PYTHONPATH=str(ROOT),
        TWEETSENT_LOAD_USER_RATE=str(args.user_rate),
        TWEETSENT_LOAD_ALIGNED="1" if args.aligned else "0",
    )
    subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        check=False,
        stdout=(out / "locust.log").open("w"),
        stderr=subprocess.STDOUT,
        timeout=args.seconds + 120,
    )


def report(args: argparse.Namespace, out: Path) -> None:
    """Print the whole run's and the steady state's figures from Locust's CSVs, and plot the latency."""
    stats = next(r for r in csv.DictReader((out / "locust_stats.csv").open()) if r["Name"] == "Aggregated")
    steady = steady_state(out / "locust_stats_history.csv", ramp_seconds=args.users / args.spawn_rate + 5)
    plot(
        out / "locust_stats_history.csv",
        out / "latency_over_time.png",
        f"{args.scenario}: {args.users} users, {args.workers} worker(s)",
    )
    pace = f"{args.user_rate:g} requests/s per user" if args.user_rate > 0 else "no pause between requests"
    if args.user_rate > 0:
        pace += ", in step (Locust's spawn phases)" if args.aligned else ", random phases"
    if args.scenario == "batch":
        pace = "256 tweets per request, no pause between requests"
    print(
        f"scenario {args.scenario}, {args.users} users (spawn {args.spawn_rate}/s, {pace}), {args.seconds}s, "
        f"{args.workers} worker(s), {args.locust_processes} Locust process(es)"
    )
    print(
        f"whole run: requests {stats['Request Count']}, failures {stats['Failure Count']}, "
        f"{float(stats['Requests/s']):.1f} requests/s, p50 {stats['50%']} ms, p95 {stats['95%']} ms, "
        f"p99 {stats['99%']} ms"
    )
    if steady:
        print(
            f"steady state (after {steady['from_s']:.0f} s): {steady['requests_per_s']:.1f} requests/s, "
            f"failures {steady['failures']}, p50 {steady['p50_ms']} ms, p99 (worst 10 s window) {steady['p99_ms']} ms"
        )
    print(f"CSVs and latency_over_time.png in {out}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.users > 2000 or args.seconds > 900:
        print("error: keep load tests bounded: at most 2000 users and 900 seconds", file=sys.stderr)
        return 2
    if args.workers is None:
        from sentiment.config import load_config

        args.workers = load_config().service.worker_processes
    if args.scenario == "floor":
        args.workers = 1
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = args.out / f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{args.scenario}"
    out.mkdir(parents=True)
    service = subprocess.Popen(
        [sys.executable, *service_command(args, port)],
        cwd=ROOT,
        stdout=(out / "service.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_workers(url, args.workers)
        run_locust(args, url, out)
        if args.scenario != "floor":
            (out / "metrics.txt").write_text(requests.get(f"{url}/metrics", timeout=5).text)
    finally:
        service.terminate()
        service.wait(timeout=30)
    report(args, out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
