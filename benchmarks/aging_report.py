"""The aging benchmark's rows: the CSV they are appended to, the picture of each series, the 30-day projection.

Usage: ``append_row(csv, row)``; ``rows = read_rows(csv)``; ``plot(rows, png)``; ``print(projection(rows, ...))``
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

FOLDERS = ("tweets", "trends", "alerts", "quarantine", "checkpoints", "spool", "spool_done")
PARTS = ("job", "service", "relay", "dashboard")
COLUMNS = (
    "batches",
    "last_batch_id",
    "wall_s",
    "rows_total",
    "batch_p50_s",
    "batch_p95_s",
    "latency_p95_s",
    *(f"{f}_{what}" for f in FOLDERS for what in ("files", "bytes")),
    *(f"rss_{p}_mib" for p in PARTS),
    "read_all_s",
    "read_day_s",
    "dash_data_s",
    "dash_render_s",
)
DAY_S = 86_400


def append_row(path: Path, row: dict) -> None:
    """Append ``row`` to the CSV at ``path`` (its header first when the file is new), flushed at once."""
    new = not path.exists() or path.stat().st_size == 0
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow({k: row.get(k, "") for k in COLUMNS})


def read_rows(path: Path) -> list[dict[str, float]]:
    """The rows of a run's CSV as numbers (an empty cell: NaN); [] when there is no file yet.

    Raises:
        ValueError: when the file's header is not this benchmark's (another file, or another version of it).
    """
    if not path.exists():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames and tuple(reader.fieldnames) != COLUMNS:
            raise ValueError(f"{path}: its columns are not the aging benchmark's; use another --out folder")
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in r.items()} for r in reader]


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float] | None:
    """Least-squares ``(intercept, slope)`` of ``ys`` on ``xs`` (NaNs left out); None with fewer than two points."""
    pairs = [(x, y) for x, y in zip(xs, ys, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 2 or len({x for x, _ in pairs}) < 2:
        return None
    n = len(pairs)
    mx, my = sum(x for x, _ in pairs) / n, sum(y for _, y in pairs) / n
    slope = sum((x - mx) * (y - my) for x, y in pairs) / sum((x - mx) ** 2 for x, _ in pairs)
    return my - slope * mx, slope


def project(rows: list[dict[str, float]], column: str, by: str, at: float) -> float | None:
    """``column`` at ``by`` = ``at``, from a straight line through the rows; None when it cannot be fitted."""
    fit = linear_fit([r[by] for r in rows], [r[column] for r in rows])
    return None if fit is None else fit[0] + fit[1] * at


def projection(
    rows: list[dict[str, float]],
    days: float,
    rate: float,
    trigger_s: float,
    retention: tuple[float, float] | None = None,
) -> str:
    """Files, bytes and read times after ``days`` at ``rate`` tweets/s with a micro-batch every ``trigger_s``.

    Files and read times are fitted against batches (the job writes files per batch), bytes against
    tweets; a live stream at that rate has data for every trigger, so ``days`` hold ``days * 86400 /
    trigger_s`` batches and ``days * 86400 * rate`` tweets. One day's partition holds one day of them
    whatever the age (``read_day_s`` at one day); the spool's archive holds at most ``retention``
    (hours, bytes: ``relay.retention_hours``, ``relay.retention_bytes``).
    """
    batches, tweets = days * DAY_S / trigger_s, days * DAY_S * rate
    lines = [f"projection to {days:g} days at {rate:g} tweets/s ({batches:,.0f} batches, {tweets:,.0f} tweets):"]
    for folder in FOLDERS:
        share = min(1.0, retention[0] * 3600 / (days * DAY_S)) if folder == "spool_done" and retention else 1.0
        files = project(rows, f"{folder}_files", "batches", batches * share)
        size = project(rows, f"{folder}_bytes", "rows_total", tweets * share)
        if share < 1.0 and size is not None:
            size = min(size, retention[1])
        capped = " (kept: relay.retention_hours, relay.retention_bytes)" if share < 1.0 else ""
        lines.append(f"  {folder:<12} {_count(files)} files, {_size(size)}{capped}")
    for column in ("read_all_s", "read_day_s", "dash_data_s", "dash_render_s"):
        at = min(batches, DAY_S / trigger_s) if column == "read_day_s" else batches
        lines.append(f"  {column:<14} {_count(project(rows, column, 'batches', at), '.1f')} s")
    lines.append(f"  (straight lines through {len(rows)} row(s): a short run's warm-up weighs on them)")
    return "\n".join(lines)


def _count(value: float | None, spec: str = ",.0f") -> str:
    return "n/a" if value is None or math.isnan(value) else format(max(value, 0.0), spec)


def _size(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "n/a"
    return f"{max(value, 0.0) / 2**30:,.2f} GiB"


def plot(rows: list[dict[str, float]], path: Path) -> None:
    """One small chart per series against the batch count, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = [c for c in COLUMNS if c not in ("batches", "last_batch_id")]
    cols = 5
    fig, axes = plt.subplots(math.ceil(len(series) / cols), cols, figsize=(4 * cols, 2.6 * len(series) / cols + 1))
    xs = [r["batches"] for r in rows]
    for ax, column in zip(axes.flat, series, strict=False):
        ax.plot(xs, [r[column] for r in rows], marker="o", markersize=3)
        ax.set_title(column, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(series) :]:
        ax.set_visible(False)
    fig.supxlabel("micro-batches")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
