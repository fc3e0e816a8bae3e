"""Start-up times of the model service and the pipeline: a first start with empty caches, then a later one.

Usage: python -m benchmarks.startup [--tree DIR ...] [--rounds N] [--no-pipeline] [--port-base 18170]

For each tree (default: this one; ``--tree . --tree ../wt-base`` compares with another commit
checked out there), with fresh cache folders (Inductor's and the engine cache) per tree:

1. ``python -m model_api``: seconds to ``/health`` and to its configured engine serving
   (``GET /model``), first start (empty caches), then a later start (same caches);
2. ``./run_pipeline.sh`` (the bundled replay into temporary output folders): seconds to the first
   parquet file, first start (empty caches) and later start.

Goals: later start healthy <= 15 s and first row <= 30 s; first start first row <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.service_goals import ROOT, load_average, start_service, stop, wait_ready
from harness.pipeline import work_env
from sentiment.logs import setup_logging

GOALS = {"later_healthy_s": 15, "later_first_row_s": 30, "first_first_row_s": 60}


def caches(folder: Path) -> dict[str, str]:
    """Fresh on-disk caches of the compiled engine (Inductor's; the engine cache is off by default)."""
    return {"TORCHINDUCTOR_CACHE_DIR": str(folder / "inductor")}


def service_start(tree: Path, port: int, env: dict, log: Path) -> dict:
    process = start_service(tree, port, log, env)
    try:
        healthy, ready = wait_ready(f"http://127.0.0.1:{port}", process, timeout=900)
        return {"healthy_s": round(healthy, 1), "engine_ready_s": round(ready, 1)}
    finally:
        stop(process)


def first_row(tree: Path, port: int, env: dict, log: Path, timeout: float = 900) -> float | None:
    """Seconds from launching ``./run_pipeline.sh`` to the first parquet file of its output."""
    out = Path(tempfile.mkdtemp(prefix="tweetsent-startup-"))
    env = {
        **os.environ,
        **env,
        **work_env(out),
        "TWEETSENT_SERVICE__PORT": str(port),
        "TWEETSENT_RELAY__PORT": str(port + 1),
    }
    started = time.monotonic()
    process = subprocess.Popen(
        ["./run_pipeline.sh"], cwd=tree, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        while time.monotonic() - started < timeout and process.poll() is None:
            if any((out / "tweets").glob("**/*.parquet")):
                return round(time.monotonic() - started, 1)
            time.sleep(0.1)
        return None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def measure(tree: Path, port: int, pipeline: bool, logs: Path) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="tweetsent-caches-"))
    env = caches(folder)
    figures: dict = {"load_before": load_average()}
    for start in ("first", "later"):
        figures |= {f"{start}_{k}": v for k, v in service_start(tree, port, env, logs / f"service-{start}.log").items()}
        if start == "first" and pipeline:  # the pipeline's first start gets empty caches of its own
            env_first = caches(Path(tempfile.mkdtemp(prefix="tweetsent-caches-")))
            figures["first_first_row_s"] = first_row(tree, port, env_first, logs / "pipeline-first.log")
    if pipeline:
        figures["later_first_row_s"] = first_row(tree, port, env, logs / "pipeline-later.log")
    figures["load_after"] = load_average()
    return figures


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.startup", description=__doc__.splitlines()[0])
    p.add_argument("--tree", action="append", help="source tree to start (repeatable)")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--no-pipeline", action="store_true", help="time the service only")
    p.add_argument("--port-base", type=int, default=18170)
    p.add_argument("--json", help="also write every run's figures to this file")
    args = p.parse_args(argv)
    setup_logging()
    trees = [str(Path(t).resolve()) for t in (args.tree or [str(ROOT)])]
    runs: dict[str, list[dict]] = {t: [] for t in trees}
    for round_ in range(args.rounds):
        for i, tree in enumerate(trees):
            logs = Path(tempfile.mkdtemp(prefix=f"tweetsent-startup-logs-{i}-"))
            figures = measure(Path(tree), args.port_base + 2 * i, not args.no_pipeline, logs)
            runs[tree].append(figures)
            print(f"round {round_ + 1} {tree}: {json.dumps(figures)} (logs in {logs})", flush=True)
    keys = [k for k in runs[trees[0]][0] if not k.startswith("load")]
    print(f"{'figure (s)':<22}" + "".join(f"{t[-24:]:>26}" for t in trees) + "   ratio   goal")
    for key in keys:
        values = [[r[key] for r in runs[t] if r.get(key) is not None] for t in trees]
        medians = [statistics.median(v) if v else float("nan") for v in values]
        row = f"{key:<22}" + "".join(f"{m:>26.1f}" for m in medians)
        row += "".join(f"{m / medians[0]:>8.2f}" for m in medians[1:])
        if key in GOALS:
            row += f"   <= {GOALS[key]} " + " ".join("met" if m <= GOALS[key] else "MISSED" for m in medians)
        print(row)
    for t in trees:
        print(f"load average {t}: " + ", ".join(f"{r['load_before']} -> {r['load_after']}" for r in runs[t]))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
