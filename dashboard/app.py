"""The dashboard page, a Streamlit script: sentiment per keyword over time, the alerts, the latest tweets.

Usage: python -m dashboard [--output-root DIR] [--port 8501]  (which runs this script with Streamlit)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.data import TIME_RANGES, OutputPaths, OutputReader, Snapshot, default_time_range
from dashboard.labelling import labelling_page
from dashboard.tables import html_table
from dashboard.try_it import try_page
from dashboard.versions import takeovers, version_order
from sentiment.config import ServiceConfig, service_token
from sentiment.labelled import LabelsTable
from sentiment.logs import setup_logging
from sentiment.trends import NO_KEYWORD

LATEST_TWEETS = 50
ALERTS_SHOWN = 20


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dashboard.app")
    parser.add_argument("--tweets", default="output/tweets", help="the scored tweets")
    parser.add_argument("--trends", default="output/trends", help="the windows per keyword")
    parser.add_argument("--alerts", default="output/alerts", help="the alerts")
    parser.add_argument("--refresh-seconds", type=float, default=5.0, help="how often the page reloads its data")
    parser.add_argument("--service-url", default="http://127.0.0.1:8000", help="the model service the Try it page asks")
    parser.add_argument("--token-file", default="", help="the service's token file ($TWEETSENT_SERVICE_TOKEN wins)")
    parser.add_argument("--labels", default=None, help="the labels table (default: labels/ beside the tweets)")
    parser.add_argument("--min-tweets", type=int, default=charts.MIN_TWEETS, help="fade chart points from fewer tweets")
    return parser.parse_args(argv)


@st.cache_resource
def reader(tweets: str, trends: str, alerts: str) -> OutputReader:
    """One reader per set of folders, shared by every browser tab, so each refresh opens only new files."""
    return OutputReader(OutputPaths(Path(tweets), Path(trends), Path(alerts)))


def _times(df: pd.DataFrame, *columns: str) -> pd.DataFrame:
    out = df.copy()
    for c in columns:
        out[c] = pd.to_datetime(out[c], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S")
    return out


def show_metrics(snapshot: Snapshot) -> None:
    trends = snapshot.trends
    n = int(trends["n"].sum())
    cols = st.columns(4)
    cols[0].metric("Tweets", f"{n:,}")
    cols[1].metric("Windows", f"{trends['window_start'].nunique():,}")
    cols[2].metric("Negative share", f"{trends['n_negative'].sum() / n:.0%}" if n else "–")
    cols[3].metric("Alerts", f"{len(snapshot.alerts):,}")


def show_table(df: pd.DataFrame) -> None:
    """A table of ``df``'s rows and columns, as HTML, every cell escaped."""
    st.html(html_table(df))


def show_alerts(alerts: pd.DataFrame) -> None:
    st.subheader("Alerts")
    if alerts.empty:
        st.caption("No alerts in this range.")
        return
    shown = alerts.sort_values("window_start", ascending=False).head(ALERTS_SHOWN)
    shown = _times(shown, "window_start")
    shown["negative_share"] = shown["negative_share"].map("{:.0%}".format)
    shown["baseline_mean"] = shown["baseline_mean"].map("{:.0%}".format)
    shown["z_score"] = shown["z_score"].map("{:.1f}".format)
    columns = ["window_start", "keyword", "n", "negative_share", "baseline_mean", "z_score"]
    show_table(shown[columns])


def show_tweets(tweets: pd.DataFrame) -> None:
    st.subheader("Latest tweets")
    if tweets.empty:
        st.caption("No tweets yet.")
        return
    shown = _times(tweets, "created_at")
    shown["keyword"] = shown["keyword"].fillna(NO_KEYWORD)  # as the charts and the trends name them
    shown["p_positive"] = shown["p_positive"].map("{:.2f}".format)
    show_table(shown[["created_at", "keyword", "sentiment", "p_positive", "user", "text"]])


def show_versions(data: OutputReader, snapshot: Snapshot, start: pd.Timestamp, min_tweets: int) -> None:
    """The keyword in view split by model version: a series per version, each takeover marked; one
    line when a single version scored it all, or when more than one keyword is in view."""
    keywords = snapshot.trends["keyword"].unique()
    if len(keywords) != 1:
        st.caption("Choose one keyword to see its trend split by the model versions that scored it.")
        return
    keyword = str(keywords[0])
    rows = data.versions_of(keyword, snapshot.since)
    order = version_order(rows) if rows is not None else pd.Series(dtype=object)
    if len(order) < 2:
        said = f"model version {order.index[0]}" if len(order) else "one model version"
        st.caption(f"Every tweet of {keyword} in this range was scored by {said}: no split to show.")
        return
    split = charts.view(rows, start, snapshot.newest, min_tweets, series="model_version")
    changes = takeovers(rows)
    score, negative = charts.version_charts(split, changes, keyword, charts.version_colours(list(order.index)))
    left, right = st.columns(2)
    left.vega_lite_chart(spec=score, key="version_score", width="stretch")
    right.vega_lite_chart(spec=negative, key="version_negative", width="stretch")
    taken = "; ".join(f"{r.model_version} from {r.first_at:%Y-%m-%d %H:%M:%S} UTC" for r in changes.itertuples())
    st.caption(
        f"{keyword}'s tweets by the model version that scored them, in the same {split.bucket_name} buckets: "
        f"{order.index[0]} first, then {taken} (dashed lines, at each version's first tweet)."
    )


def shown(path: Path) -> str:
    """A folder as the page names it: relative to the working folder when under it (``output/trends``)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _range_chosen() -> None:
    st.session_state["time_range_chosen"] = True


def page(paths: OutputPaths, min_tweets: int = charts.MIN_TWEETS) -> None:
    """The part of the page that reloads itself: filters, figures, charts and tables."""
    started = time.perf_counter()
    data = reader(str(paths.tweets), str(paths.trends), str(paths.alerts))
    keywords = sorted(data.trends()["keyword"].unique())
    # Streamlit refuses a default no longer among the options: keep only the keywords still there.
    if "keywords" in st.session_state:
        st.session_state["keywords"] = [k for k in st.session_state["keywords"] if k in keywords]
    left, right = st.columns([3, 1])
    chosen = left.multiselect("Keywords", keywords, key="keywords", placeholder="All keywords")
    if not st.session_state.get("time_range_chosen"):  # until the reader picks one, the range fits the data
        trends = data.trends()
        st.session_state["time_range"] = default_time_range(trends["window_end"].max() if not trends.empty else None)
    time_range = right.selectbox("Time range", list(TIME_RANGES), key="time_range", on_change=_range_chosen)
    status = st.empty()
    snapshot = data.snapshot(chosen, time_range, LATEST_TWEETS)
    read_ms = (time.perf_counter() - started) * 1000
    newest = snapshot.newest.strftime("%Y-%m-%d %H:%M") if snapshot.newest is not None else "none yet"
    status.caption(
        f"Trends: {shown(paths.trends)} · newest window ends {newest} UTC · "
        f"refreshed {pd.Timestamp.now(tz='UTC'):%H:%M:%S} UTC (data read in {read_ms:.0f} ms)"
    )
    if snapshot.trends.empty:
        st.info(f"No trends yet in {shown(paths.trends)}: the job writes a window once it closes.")
    else:
        show_metrics(snapshot)
        colours = charts.keyword_colours(snapshot.keywords)
        start = snapshot.since if snapshot.since is not None else snapshot.trends["window_start"].min()
        view = charts.view(snapshot.trends, start, snapshot.newest, min_tweets)
        top_left, top_right = st.columns(2)
        top_left.vega_lite_chart(spec=charts.counts_chart(view, colours), key="counts", width="stretch")
        top_right.vega_lite_chart(spec=charts.score_chart(view, colours), key="score", width="stretch")
        bottom_left, bottom_right = st.columns(2)
        bottom_left.vega_lite_chart(
            spec=charts.negative_chart(view, snapshot.alerts, colours), key="negative", width="stretch"
        )
        bottom_right.vega_lite_chart(spec=charts.shares_chart(snapshot.trends), key="shares", width="stretch")
        st.caption(
            f"One point per {view.bucket_name}: the trends' {view.window_name} windows summed to fit the range "
            f"in {charts.MAX_POINTS} points or fewer. Points from fewer than {min_tweets} tweets are "
            "faded and not joined; a line breaks where there were none. The band is the 95% Wilson interval "
            "of the negative share."
        )
        show_versions(data, snapshot, start, min_tweets)
    show_alerts(snapshot.alerts)
    show_tweets(snapshot.tweets)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging()  # once per process: Streamlit reruns the script, and a second call changes nothing
    st.set_page_config(page_title="tweet-sentiment", layout="wide")
    st.title("tweet-sentiment")
    paths = OutputPaths(Path(args.tweets), Path(args.trends), Path(args.alerts), args.labels and Path(args.labels))

    def overview() -> None:
        st.fragment(run_every=args.refresh_seconds)(page)(paths, args.min_tweets)

    def label() -> None:
        data = reader(str(paths.tweets), str(paths.trends), str(paths.alerts))
        token = service_token(ServiceConfig(token_file=args.token_file))
        labelling_page(data, LabelsTable(paths.labels), args.service_url, token)

    def try_it() -> None:
        try_page(args.service_url, service_token(ServiceConfig(token_file=args.token_file)))

    pages = [
        st.Page(overview, title="Overview", default=True),
        st.Page(label, title="Label", url_path="label"),
        st.Page(try_it, title="Try it", url_path="try"),
    ]
    st.navigation(pages, position="top").run()


if __name__ == "__main__":
    main()
