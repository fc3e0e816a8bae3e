"""An offline report of an output folder: sentiment over time per keyword, alerts marked, as PNG (and HTML).

Usage: python -m dashboard.report --output-root output --out report.png [--html report.html] [--keywords a b]
"""

from __future__ import annotations

import argparse
import base64
import html
import logging
import sys
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from dashboard.charts import LABEL_COLOURS, keyword_colours
from dashboard.data import OutputReader, filter_windows
from sentiment.labels import NEGATIVE
from sentiment.logs import setup_logging

log = logging.getLogger("dashboard.report")


def build_figure(trends: pd.DataFrame, alerts: pd.DataFrame, title: str = "tweet-sentiment") -> Figure:
    """Three panels over the same minutes: tweets, mean positive score and negative share, a line per
    keyword; each alert is a red cross on the negative share."""
    fig = Figure(figsize=(12, 9), layout="constrained")
    counts, score, negative = fig.subplots(3, 1, sharex=True)
    colours = keyword_colours(list(trends["keyword"].unique()))
    for keyword, rows in trends.groupby("keyword", sort=True):
        x = rows["window_start"].dt.tz_convert(None)
        style = {"color": colours[keyword], "marker": ".", "markersize": 3, "linewidth": 1}
        counts.plot(x, rows["n"], label=keyword, **style)
        score.plot(x, rows["mean_p_positive"], label=keyword, **style)
        negative.plot(x, rows["negative_share"], label=keyword, **style)
    if not alerts.empty:
        negative.scatter(
            alerts["window_start"].dt.tz_convert(None),
            alerts["negative_share"],
            marker="x",
            s=90,
            linewidths=2.5,
            color=LABEL_COLOURS[NEGATIVE],
            label="alert",
            zorder=3,
        )
        for _, alert in alerts.iterrows():
            negative.annotate(
                alert["keyword"],
                (alert["window_start"].tz_convert(None), alert["negative_share"]),
                textcoords="offset points",
                xytext=(6, 6),
                fontsize=8,
                color=LABEL_COLOURS[NEGATIVE],
            )
    counts.set_ylabel("tweets per minute")
    counts.set_ylim(0, max(1, trends["n"].max()) * 1.25)  # room for the legend
    score.set_ylabel("mean positive score")
    score.set_ylim(0, 1)
    negative.set_ylabel("negative share")
    negative.set_ylim(0, 1)
    negative.set_xlabel("window start (UTC)")
    for ax in (counts, score, negative):
        ax.grid(alpha=0.3)
    counts.legend(loc="upper left", ncols=min(6, max(1, trends["keyword"].nunique())), fontsize=8)
    negative.legend(loc="upper left", ncols=7, fontsize=8)
    n = int(trends["n"].sum())
    span = f"{trends['window_start'].min():%Y-%m-%d %H:%M} to {trends['window_end'].max():%Y-%m-%d %H:%M} UTC"
    fig.suptitle(f"{title}: {n:,} tweets, {span}, {len(alerts)} alert(s)")
    return fig


def summary(trends: pd.DataFrame) -> pd.DataFrame:
    """Per keyword: windows, tweets, share of each label and mean positive score over the whole range."""
    g = trends.groupby("keyword", sort=True)
    sums = g[["n", "n_negative", "n_neutral", "n_positive"]].sum()
    out = pd.DataFrame({"windows": g.size(), "tweets": sums["n"]})
    for column in ("n_negative", "n_neutral", "n_positive"):
        out[column.removeprefix("n_") + "_share"] = sums[column] / sums["n"]
    weighted = (trends["mean_p_positive"] * trends["n"]).groupby(trends["keyword"]).sum()
    out["mean_p_positive"] = weighted / sums["n"]
    return out


def html_report(png: bytes, trends: pd.DataFrame, alerts: pd.DataFrame) -> str:
    """A standalone page: the figure inline, the per-keyword summary and the alerts."""
    image = base64.b64encode(png).decode("ascii")
    totals = html.escape(f"{len(trends)} windows, {int(trends['n'].sum()):,} tweets")
    table = summary(trends).to_html(float_format=lambda v: f"{v:.3f}", border=0)
    alerts_html = (
        alerts.to_html(index=False, float_format=lambda v: f"{v:.3f}", border=0) if not alerts.empty else "<p>None.</p>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>tweet-sentiment report</title>"
        "<style>body{font-family:sans-serif;margin:2em}td,th{padding:2px 8px;text-align:right}</style></head><body>"
        f"<h1>tweet-sentiment report</h1><img alt='sentiment over time' src='data:image/png;base64,{image}'>"
        f"<h2>Keywords</h2>{table}<h2>Alerts</h2>{alerts_html}"
        f"<p>{totals}</p></body></html>"
    )


def write_report(
    output_root: str | Path, out: str | Path, html_out: str | Path | None = None, keywords: list[str] | None = None
) -> Path:
    """Read ``output_root``'s trends and alerts and write the PNG (and the HTML page if asked).

    Raises:
        ValueError: if there are no trends (for these keywords) in ``output_root/trends``.
    """
    reader = OutputReader(output_root)
    trends = filter_windows(reader.trends(), keywords, None)
    if trends.empty:
        which = f" for {', '.join(keywords)}" if keywords else ""
        raise ValueError(
            f"no trends{which} in {Path(output_root) / 'trends'}: run the pipeline first, or pass the --output-root "
            "it wrote to"
        )
    alerts = filter_windows(reader.alerts(), keywords, None)
    fig = build_figure(trends, alerts)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    if html_out is not None:
        Path(html_out).write_text(html_report(out.read_bytes(), trends, alerts), encoding="utf-8")
    log.info("wrote %s (%d windows, %d alerts)", out, len(trends), len(alerts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboard.report", description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", default="output", help="the pipeline's output folder (default: output)")
    parser.add_argument("--out", default="report.png", help="the PNG to write (default: report.png)")
    parser.add_argument("--html", default=None, help="also write a standalone HTML page here")
    parser.add_argument("--keywords", nargs="*", default=None, help="only these keywords (default: all)")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        write_report(args.output_root, args.out, args.html, args.keywords)
    except ValueError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
