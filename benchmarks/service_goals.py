"""The model service against its goals, one source tree or several side by side in one run.

Usage: python -m benchmarks.service_goals [--tree DIR ...] [--rounds N] [--open-seconds 30]
       [--closed-seconds 15] [--batch-seconds 20] [--port-base 18150] [--json FILE]
       [--env KEY=VALUE ...]

For each tree (default: this one; e.g. ``--tree . --tree ../wt-base`` compares with another
commit checked out there), each round starts ``python -m model_api`` of that tree on 127.0.0.1,
waits until it is healthy and its compiled engine serves (``GET /model``; a tree whose service
does not report an engine is ready once healthy), then measures, on loopback:

- open loop: ``hey -z 30s -c 500 -q 1``, 500 users each sending one ``POST /predict`` per second;
  req/s, p50, p99, errors (goal: >= 490 req/s, p99 <= 300 ms, 0 errors). ``hey`` starts its users
  together, so this is a burst of 500 requests every second;
- the same 500 users spread over the second (10 ``hey`` processes of 50 users, started 0.1 s apart):
  req/s, p50, p99, errors;
- closed loop: ``wrk -t2 -c500`` (a Lua script makes the POST), as fast as it answers;
  req/s, p50, p99, errors (goal: >= 1,000 req/s, p99 <= 500 ms), and the CPU time each request
  cost the service's HTTP workers and its model processes (ms per request, from /proc);
- ``POST /predict/batch`` of 256 real tweets, four clients: tweets/s (goal: >= 1,300). Each client
  keeps one connection, and a service's workers share connections, not requests: with two clients
  both can land on one worker of two and leave the other idle (measured: 641 tweets/s against
  1,238), as the Spark job's tasks, which open several connections each, do not.

Trees take turns within a round, so that a slow spell of a shared machine falls on both; the
table gives each figure's median over the rounds and the ratio of each tree to the first.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import requests

from harness.processes import cpu_seconds, is_model_process, process_tree
from sentiment.logs import setup_logging

ROOT = Path(__file__).resolve().parents[1]
TWEET = "just got the new phone and i love it, best day ever @friend http://t.co/x"
GOALS = {
    "open_rps": (">=", 490),
    "open_p99_ms": ("<=", 300),
    "open_errors": ("<=", 0),
    "closed_rps": (">=", 1000),
    "closed_p99_ms": ("<=", 500),
    "batch_tweets_per_s": (">=", 1300),
}


def start_service(tree: Path, port: int, log: Path, env: dict | None = None) -> subprocess.Popen:
    python = tree / ".venv" / "bin" / "python"
    return subprocess.Popen(
        [str(python), "-m", "model_api", "--port", str(port)],
        cwd=tree,
        env={**os.environ, **(env or {}), "PYTHONPATH": str(tree)},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 600.0) -> tuple[float, float]:
    """Seconds until ``/health`` answers, and until the configured engine serves in every worker
    (``GET /model`` on fresh connections names the worker and how many there are; a service that
    does not is ready when one answer says so)."""
    started = time.monotonic()
    healthy = None
    ready: set = set()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"the service exited with code {process.returncode}")
        try:
            if healthy is None and requests.get(f"{url}/health", timeout=2).ok:
                healthy = time.monotonic() - started
            if healthy is not None:
                info = requests.get(f"{url}/model", timeout=2, headers={"Connection": "close"}).json()
                if info.get("engine", info.get("precision")) == info.get("precision"):
                    ready.add(info.get("worker"))
                    if len(ready) >= info.get("workers", 1):
                        return healthy, time.monotonic() - started
        except (requests.RequestException, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} was not ready within {timeout:.0f} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, 15)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        process.wait()


def _ms(value: str, unit: str) -> float:
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "secs": 1000.0}[unit]


def open_loop(url: str, seconds: int, users: int = 500) -> dict:
    """``hey``: each of ``users`` sends one request per second."""
    out = subprocess.run(
        ["hey", "-z", f"{seconds}s", "-c", str(users), "-q", "1", "-m", "POST", "-T", "application/json"]
        + ["-d", json.dumps({"text": TWEET}), f"{url}/predict"],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    ).stdout
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    errors = sum(n for c, n in codes.items() if c != 200)
    error_block = out.split("Error distribution:")[1] if "Error distribution:" in out else ""
    errors += sum(int(n) for n in re.findall(r"\[(\d+)\]", error_block))

    def pct(p: int) -> float:
        found = re.search(rf"\s{p}%% in ([\d.]+) secs".replace("%%", "%"), out)
        return round(float(found.group(1)) * 1000, 1) if found else float("nan")

    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "open_rps": round(float(rps.group(1)), 1) if rps else 0.0,
        "open_p50_ms": pct(50),
        "open_p99_ms": pct(99),
        "open_errors": errors,
    }


def open_loop_spread(url: str, seconds: int, users: int = 500, groups: int = 10) -> dict:
    """500 users each sending one request per second, at different moments of the second.

    ``hey -c 500 -q 1`` starts all its users together, each on a one-second ticker, so its
    requests arrive as one burst of 500 every second (:func:`open_loop`; its p99 is the time to
    score a whole burst). Here ``groups`` ``hey`` processes of ``users / groups`` users start
    ``1 / groups`` s apart, so that smaller bursts spread over the second, as independent users'
    requests do; percentiles are over every request of every process (``hey -o csv``).
    """
    body = json.dumps({"text": TWEET})
    processes = []
    for _ in range(groups):
        processes.append(
            subprocess.Popen(
                ["hey", "-z", f"{seconds}s", "-c", str(users // groups), "-q", "1", "-o", "csv", "-m", "POST"]
                + ["-T", "application/json", "-d", body, f"{url}/predict"],
                stdout=subprocess.PIPE,
                text=True,
            )
        )
        time.sleep(1 / groups)
    times, errors = [], 0
    for process in processes:
        out, _ = process.communicate(timeout=seconds + 60)
        for line in out.splitlines()[1:]:
            fields = line.split(",")
            if len(fields) < 8:
                continue
            if fields[6] != "200":
                errors += 1
            times.append(float(fields[0]) * 1000)
    if not times:
        return {"spread_rps": 0.0, "spread_p50_ms": float("nan"), "spread_p99_ms": float("nan"), "spread_errors": 0}
    cuts = statistics.quantiles(times, n=100)
    return {
        "spread_rps": round(len(times) / seconds, 1),  # each process sends for ``seconds``
        "spread_p50_ms": round(cuts[49], 1),
        "spread_p99_ms": round(cuts[98], 1),
        "spread_errors": errors,
    }


def closed_loop(url: str, seconds: int, connections: int = 500) -> dict:
    """``wrk``: ``connections`` connections, each sending its next request when answered."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        body = json.dumps({"text": TWEET}).replace("\\", "\\\\").replace('"', '\\"')
        script.write(f'wrk.method = "POST"\nwrk.body = "{body}"\nwrk.headers["Content-Type"] = "application/json"\n')
    try:
        out = subprocess.run(
            ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "--latency", "-s", script.name]
            + [f"{url}/predict"],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        os.unlink(script.name)

    def pct(p: int) -> float:
        found = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        return round(_ms(*found.groups()), 1) if found else float("nan")

    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if socket_errors:
        errors += sum(int(n) for n in socket_errors.groups())
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "closed_rps": round(float(rps.group(1)), 1) if rps else 0.0,
        "closed_p50_ms": pct(50),
        "closed_p99_ms": pct(99),
        "closed_errors": errors,
    }


def batch_throughput(url: str, seconds: float, texts: list[str], clients: int = 2, batch: int = 256) -> dict:
    """Tweets/s of ``POST /predict/batch``, ``clients`` clients sending ``batch`` tweets each time."""
    scored = [0] * clients
    deadline = time.monotonic() + seconds

    def client(i: int) -> None:
        with requests.Session() as session:
            n = 0
            while time.monotonic() < deadline:
                chunk = [texts[(n + k) % len(texts)] for k in range(batch)]
                n += batch
                r = session.post(f"{url}/predict/batch", json={"texts": chunk}, timeout=60)
                r.raise_for_status()
                scored[i] += len(r.json()["results"])

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"batch_tweets_per_s": round(sum(scored) / (time.monotonic() - started), 1)}


def calibration_tweets() -> list[str]:
    path = ROOT / "model_api" / "model" / "calibration.txt"
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def measure(tree: Path, port: int, args: argparse.Namespace, texts: list[str], log: Path) -> dict:
    url = f"http://127.0.0.1:{port}"
    process = start_service(tree, port, log, dict(item.split("=", 1) for item in args.env))
    try:
        healthy, ready = wait_ready(url, process)
        figures = {"healthy_s": round(healthy, 1), "engine_ready_s": round(ready, 1), "load_before": load_average()}
        if "open" in args.measures:
            figures |= open_loop(url, args.open_seconds)
        if "spread" in args.measures:
            figures |= open_loop_spread(url, args.open_seconds)
        if "closed" in args.measures:
            pids = process_tree(process.pid)
            before = {pid: cpu_seconds(pid) for pid in pids}
            figures |= closed_loop(url, args.closed_seconds)
            used = {pid: cpu_seconds(pid) - before[pid] for pid in pids}
            served = max(1.0, figures["closed_rps"] * args.closed_seconds)
            # What a request costs the service's processes: HTTP (the workers) and the model.
            figures["closed_http_ms_per_req"] = round(
                1000 * sum(s for pid, s in used.items() if not is_model_process(pid)) / served, 3
            )
            figures["closed_model_ms_per_req"] = round(
                1000 * sum(s for pid, s in used.items() if is_model_process(pid)) / served, 3
            )
        if "batch" in args.measures:
            figures |= batch_throughput(url, args.batch_seconds, texts, clients=args.batch_clients)
        figures["load_after"] = load_average()
        return figures
    finally:
        stop(process)


def table(trees: list[str], runs: dict[str, list[dict]]) -> str:
    keys = [k for k in runs[trees[0]][0] if not k.startswith("load")]
    lines = [
        f"{'figure':<22}" + "".join(f"{t[-24:]:>26}" for t in trees) + "".join(f"{'ratio':>10}" for _ in trees[1:])
    ]
    lines[0] += f"{'goal':>12}"
    for key in keys:
        medians = [statistics.median(r[key] for r in runs[t]) for t in trees]
        row = f"{key:<22}" + "".join(f"{m:>26.1f}" if abs(m) >= 10 else f"{m:>26.3f}" for m in medians)
        row += "".join(f"{(m / medians[0] if medians[0] else float('nan')):>10.2f}" for m in medians[1:])
        if key in GOALS:
            op, goal = GOALS[key]
            met = [(m >= goal) if op == ">=" else (m <= goal) for m in medians]
            row += f"{op + ' ' + str(goal):>12} " + " ".join("met" if ok else "MISSED" for ok in met)
        lines.append(row)
    for t in trees:
        loads = ", ".join(f"{r['load_before']} -> {r['load_after']}" for r in runs[t])
        lines.append(f"load average (1, 5, 15 min) {t}: {loads}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.service_goals", description=__doc__.splitlines()[0])
    p.add_argument("--tree", action="append", help="source tree to start the service from (repeatable)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--open-seconds", type=int, default=30)
    p.add_argument("--closed-seconds", type=int, default=15)
    p.add_argument("--batch-seconds", type=float, default=20.0)
    p.add_argument("--port-base", type=int, default=18150)
    p.add_argument(
        "--measures", default="open,spread,closed,batch", help="which loads to run (comma-separated; default: all)"
    )
    p.add_argument(
        "--batch-clients",
        type=int,
        default=4,
        help="concurrent /predict/batch clients, each on its own connection (workers share connections, not requests)",
    )
    p.add_argument("--json", help="also write the figures of every run to this file")
    p.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="environment of every service started, e.g. TWEETSENT_SERVICE__MODEL=models/fast (repeatable)",
    )
    args = p.parse_args(argv)
    if bad := [item for item in args.env if "=" not in item]:
        p.error(f"--env takes KEY=VALUE, got {bad}")
    setup_logging()
    trees = [str(Path(t).resolve()) for t in (args.tree or [str(ROOT)])]
    texts = calibration_tweets()
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    logs = Path(tempfile.mkdtemp(prefix="tweetsent-goals-"))
    for round_ in range(args.rounds):
        for i, tree in enumerate(trees):
            figures = measure(Path(tree), args.port_base + i, args, texts, logs / f"service-{i}-{round_}.log")
            runs[tree].append(figures)
            print(f"round {round_ + 1} {tree}: {json.dumps(figures)}", flush=True)
    print(table(trees, runs))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
