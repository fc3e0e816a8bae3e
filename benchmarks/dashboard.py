"""Measure the dashboard on a large output: the data time of a page load and a refresh, and memory over refreshes.

Usage: python -m benchmarks.dashboard [--tweets 1000000] [--refreshes 720] [--page-seconds 120] [--output-root DIR]

1. Builds an output folder with ``--tweets`` tweets in batch files of 500 (as the job's micro-batches
   write them), one trends file per minute and the alerts (kept with ``--output-root``).
2. Data: the time of :meth:`OutputReader.snapshot` (what each page load and refresh calls): cold (a
   new reader, every trends file opened), warm (what each refresh costs), and warm while the job
   adds a batch of tweets and a minute of trends before each refresh; then ``--refreshes`` refreshes
   (720 = an hour at one per 5 s) with the process's resident memory sampled, to see it stay flat.
3. Page: the real page in Debian's headless Chromium: the time from opening it to its first figures
   and to its charts drawn, and the CPU time that took (the first, cold, then five more), then
   ``--tabs`` tabs refreshing every second for ``--page-seconds`` with the server's resident memory
   sampled.
4. For comparison, the time and memory of reading every tweet (what the dashboard does not do).

``--first-render OUTPUT`` measures only the first render of the page on an existing output (the
bundled replay's ``output/``): new browser contexts (nothing cached) open the page, and each load is
timed to the figures row and to everything drawn (four charts, the tables' rows, nothing stale or
still a placeholder). ``--against CHECKOUT`` serves a second checkout's dashboard beside this one
and alternates the loads between the two, so both are measured side by side in one run:

    python -m benchmarks.dashboard --first-render output --against ../before --loads 9
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from dashboard.browser import DashboardServer, launch_chromium, rss_mib, wait_for_charts
from dashboard.data import OutputReader
from dashboard.demo import Demo, make_tweets, write_demo_output
from harness.processes import process_tree
from sentiment.config import PROJECT_ROOT
from sentiment.logs import setup_logging
from sentiment.trends import trends_from_tweets

KEYWORDS = ("python", "rust", "golang", "java", "weather", "football", "music", "movies", "coffee", "travel")
RATE = 100  # tweets per keyword per minute
BATCH = 500  # tweets per batch file


def build_output(root: Path, tweets: int) -> Demo:
    """An output folder of ``tweets`` tweets over ten keywords, with a spike 20 minutes before the end."""
    minutes = max(30, -(-tweets // (RATE * len(KEYWORDS))))
    keywords = {k: (RATE, 0.15 + 0.03 * i) for i, k in enumerate(KEYWORDS)}
    demo = Demo(keywords=keywords, minutes=minutes, spike=("python", minutes - 20), rows_per_file=BATCH)
    started = time.perf_counter()
    write_demo_output(root, demo)
    files = sum(1 for _ in (root / "tweets").rglob("*.parquet"))
    print(
        f"output: {tweets:,} tweets requested, {minutes} minutes x {len(KEYWORDS)} keywords x {RATE}/min "
        f"in {files:,} tweet files, {minutes} trends files; built in {time.perf_counter() - started:.0f} s"
    )
    return demo


def cpu_ms(pids: list[int]) -> dict[int, float]:
    """CPU time (user + system) of each process so far, ms, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) * 1000 / tick
    return out


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return (time.perf_counter() - started) * 1000, result


def describe(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"p50 {statistics.median(ms):.0f} ms, p95 {p95:.0f} ms, max {ms[-1]:.0f} ms ({len(ms)} runs)"


def bench_data(root: Path, demo: Demo, refreshes: int) -> None:
    print("\n== data (OutputReader.snapshot: trends, alerts, the 50 latest tweets) ==")
    reader = OutputReader(root)
    cold, snap = timed(reader.snapshot, None, "Last hour")
    print(
        f"cold page load (new reader, every trends file opened): {cold:.0f} ms; "
        f"{len(reader.trends()):,} trends rows, {len(snap.trends):,} shown, {len(snap.tweets)} tweets"
    )
    warm = [timed(reader.snapshot, None, "Last hour")[0] for _ in range(50)]
    print(f"refresh, nothing new: {describe(warm)}")
    one = [timed(reader.snapshot, ["python"], "All")[0] for _ in range(20)]
    print(f"refresh, one keyword, all time: {describe(one)}")

    # The job goes on: a batch of tweets and a minute of trends before each refresh.
    more = make_tweets(dataclasses.replace(demo, start=demo.start + pd.Timedelta(minutes=demo.minutes), minutes=20))
    growing = []
    for minute, rows in more.groupby(more["created_at"].dt.floor("1min")):
        rows = rows.head(BATCH)
        day = root / "tweets" / f"date={minute:%Y-%m-%d}"
        day.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(day / f"batch-9{minute:%Y%m%d%H%M}.parquet", index=False)
        trends_from_tweets(rows).to_parquet(root / "trends" / f"batch-9{minute:%Y%m%d%H%M}.parquet", index=False)
        growing.append(timed(reader.snapshot, None, "Last hour")[0])
    print(f"refresh after the job wrote a batch and a minute of trends: {describe(growing)}")

    gc.collect()
    samples = []
    times = []
    for i in range(refreshes):
        ms, snap = timed(reader.snapshot, None, "Last hour")
        times.append(ms)
        del snap
        if i in (9, refreshes // 4, refreshes // 2, 3 * refreshes // 4, refreshes - 1):
            gc.collect()
            samples.append((i + 1, rss_mib()))
    print(f"{refreshes} refreshes: {describe(times)}")
    print("resident memory of this process after N refreshes: " + ", ".join(f"{n}: {m:.0f} MiB" for n, m in samples))
    print(f"growth from refresh {samples[0][0]} to {samples[-1][0]}: {samples[-1][1] - samples[0][1]:+.1f} MiB")


def bench_page(root: Path, seconds: float, tabs: int) -> None:
    from playwright.sync_api import sync_playwright

    print("\n== page (python -m dashboard in headless Chromium) ==")
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = launch_chromium(p)
        with DashboardServer(root, Path(tmp) / "loads.log", refresh_seconds=5.0) as server:
            page_loads(browser, server)
        with DashboardServer(root, Path(tmp) / "soak.log", refresh_seconds=1.0) as server:
            soak(browser, server, seconds, tabs)
        browser.close()


def page_loads(browser, server: DashboardServer) -> None:
    """Open the page six times, each in a new context (nothing cached), refreshing every 5 s as by default."""
    first_data, loads, browser_cpu, server_cpu = [], [], [], []
    for _ in range(6):
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        before = cpu_ms(process_tree(os.getpid()))
        started = time.perf_counter()
        page.goto(server.url)
        page.get_by_test_id("stMetric").first.wait_for()
        first_data.append((time.perf_counter() - started) * 1000)
        wait_for_charts(page, "c => Object.keys(c).length == 4")
        loads.append((time.perf_counter() - started) * 1000)
        after = cpu_ms(process_tree(os.getpid()))
        browser_cpu.append(sum(ms - before.get(pid, 0) for pid, ms in after.items() if pid != server.proc.pid))
        server_cpu.append(after.get(server.proc.pid, 0) - before.get(server.proc.pid, 0))
        context.close()
    print(f"page load to the first figures: first (cold) {first_data[0]:.0f} ms; then {describe(first_data[1:])}")
    print(f"page load to all four charts drawn: first (cold) {loads[0]:.0f} ms; then {describe(loads[1:])}")
    print(
        "CPU time of a page load (about its time on an idle core): Chromium and Playwright "
        f"{describe(browser_cpu[1:])}; the dashboard server {describe(server_cpu[1:])}"
    )


def soak(browser, server: DashboardServer, seconds: float, tabs: int) -> None:
    """Tabs left open on a page refreshing every second; the server's resident memory sampled."""
    count = """() => { window.__seen = new Set(); setInterval(() => {
        const el = [...document.querySelectorAll('[data-testid="stCaptionContainer"]')]
            .find(e => e.innerText.includes('refreshed'));
        if (el) window.__seen.add(el.innerText.split('refreshed')[1]); }, 100); }"""
    pages = [browser.new_page(viewport={"width": 1400, "height": 1000}) for _ in range(tabs)]
    for page in pages:
        page.goto(server.url)
        wait_for_charts(page, "c => Object.keys(c).length == 4")
        page.evaluate(count)
    start_cpu = cpu_ms([server.proc.pid])[server.proc.pid]
    samples = [(0, server.rss_mib())]
    started = time.monotonic()
    while (elapsed := time.monotonic() - started) < seconds:
        pages[0].wait_for_timeout(min(10_000, (seconds - elapsed) * 1000))  # the sampling period
        samples.append((round(time.monotonic() - started), server.rss_mib()))
    refreshed = sum(page.evaluate("() => window.__seen.size") for page in pages)
    server_cpu = cpu_ms([server.proc.pid])[server.proc.pid] - start_cpu
    print(
        f"{tabs} tabs refreshing every second for {seconds:.0f} s: {refreshed} refreshes drawn; "
        f"server CPU {server_cpu / max(1, refreshed):.0f} ms per refresh"
    )
    step = max(1, len(samples) // 8)
    shown = samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else [])
    print("server resident memory at t s: " + ", ".join(f"{t}: {m:.0f} MiB" for t, m in shown))
    half = samples[len(samples) // 2][1]
    print(
        f"server memory growth: {samples[-1][1] - samples[0][1]:+.1f} MiB over the run, "
        f"{samples[-1][1] - half:+.1f} MiB over its second half"
    )
    for page in pages:
        page.close()


# Everything drawn, whichever chart library or table the page uses (this one's or an older one's):
# the four charts, at least ``rows`` table rows, no placeholder or stale element.
DRAWN_JS = """([rows]) => {
    if (document.querySelector('[data-testid="stSkeleton"], [data-testid="stAppSkeleton"], [data-stale="true"]'))
        return false;
    const plotly = [...document.querySelectorAll('.js-plotly-plot')].filter(el => el.querySelector('.main-svg')).length;
    const vega = [...document.querySelectorAll('.vega-embed svg')]
        .filter(svg => svg.querySelector('.role-title-text')).length;
    return plotly + vega >= 4 && document.querySelectorAll('tbody tr').length >= rows;
}"""


def bench_first_render(output: Path, against: Path | None, loads: int) -> None:
    """Alternate cold page loads between this checkout's dashboard and ``against``'s, on one output."""
    from playwright.sync_api import sync_playwright

    snapshot = OutputReader(output).snapshot(None, "All", 50)
    rows = len(snapshot.tweets) + min(len(snapshot.alerts), 20)
    checkouts = {"this checkout": PROJECT_ROOT} | ({f"{against}": against} if against else {})
    print(f"\n== first render of {output} ({rows} table rows), {loads} cold loads each, alternating ==")
    times: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in checkouts}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = launch_chromium(p)
        servers = {
            name: DashboardServer(output, Path(tmp) / f"{i}.log", refresh_seconds=5.0, project_root=root).start()
            for i, (name, root) in enumerate(checkouts.items())
        }
        try:
            for _ in range(loads + 1):  # the first load of each server warms its imports: left out
                for name, server in servers.items():
                    context = browser.new_context(viewport={"width": 1400, "height": 1000})
                    page = context.new_page()
                    started = time.perf_counter()
                    page.goto(server.url)
                    page.get_by_test_id("stMetric").first.wait_for()
                    figures = (time.perf_counter() - started) * 1000
                    page.wait_for_function(DRAWN_JS, arg=[rows], timeout=60_000)
                    drawn = (time.perf_counter() - started) * 1000
                    times[name][0].append(figures)
                    times[name][1].append(drawn)
                    context.close()
        finally:
            for server in servers.values():
                server.stop()
        browser.close()
    for name, (figures, drawn) in times.items():
        print(
            f"{name}: first (cold server) {drawn[0]:.0f} ms to everything drawn; then to the figures row "
            f"{describe(figures[1:])}; to everything drawn {describe(drawn[1:])}"
        )
    if against:
        mine, theirs = (statistics.median(times[name][1][1:]) for name in checkouts)
        print(f"median to everything drawn, this checkout / {against}: {mine / theirs:.2f}")


def bench_naive(root: Path) -> None:
    """Reading every tweet, in a child process so its memory is measured apart."""
    code = (
        "import time, pandas as pd; from dashboard.browser import rss_mib; t = time.perf_counter(); "
        f"df = pd.read_parquet({str(root / 'tweets')!r}); "
        "print(f'{(time.perf_counter() - t) * 1000:.0f} ms, {len(df):,} rows, resident {rss_mib():.0f} MiB')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    print(f"\nfor comparison, reading every tweet with pd.read_parquet: {out.stdout.strip() or out.stderr[-300:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=1_000_000)
    parser.add_argument("--refreshes", type=int, default=720, help="data refreshes for the memory figure")
    parser.add_argument(
        "--page-seconds", type=float, default=300.0, help="how long tabs refresh every second; 0 skips the browser part"
    )
    parser.add_argument("--tabs", type=int, default=2, help="browser tabs refreshing at once")
    parser.add_argument("--output-root", default=None, help="build the output here (kept); default a temporary folder")
    parser.add_argument("--first-render", type=Path, help="only time the page's first render on this existing output")
    parser.add_argument("--against", type=Path, help="with --first-render: another checkout's dashboard, side by side")
    parser.add_argument("--loads", type=int, default=9, help="with --first-render: cold loads per dashboard")
    args = parser.parse_args(argv)
    setup_logging()
    if args.first_render:
        if not (args.first_render / "trends").is_dir():
            parser.error(f"--first-render {args.first_render}: no trends/ there (run the pipeline first)")
        if args.against and not (args.against / "dashboard" / "app.py").is_file():
            parser.error(f"--against {args.against}: not a checkout of this project (no dashboard/app.py)")
        print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
        bench_first_render(args.first_render.resolve(), args.against.resolve() if args.against else None, args.loads)
        return 0

    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="dashboard-bench-") as tmp:
        root = Path(args.output_root or tmp)
        if args.output_root and any(root.glob("*")):
            parser.error(f"--output-root {root} is not empty: the benchmark builds its own output there")
        demo = build_output(root, args.tweets)
        bench_data(root, demo, args.refreshes)
        if args.page_seconds > 0:
            bench_page(root, args.page_seconds, args.tabs)
        bench_naive(root)
    print(f"load average at end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
