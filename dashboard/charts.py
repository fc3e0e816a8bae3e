"""The dashboard's charts: Vega-Lite specs built from trends and alerts frames, with no I/O.

The time charts draw a :class:`View`: the trends summed into buckets picked from the range in view
(:mod:`dashboard.resolution`), so a series has at most a few hundred points whatever the range. A
bucket with fewer than ``min_tweets`` tweets is drawn faded and not joined to its neighbours, a
bucket with none breaks the line, and the negative share carries its 95% Wilson interval as a band.

Each spec holds its data inline and draws as SVG, so a page needs no chart library beyond the Vega
that Streamlit ships, and every mark is in the page's DOM (the browser tests count them). Each mark
layer has a name the tests and the screenshot read: ``bars``, ``line``, ``points``, ``few``,
``band``, ``alerts``, and on a keyword's split by model version ``takeovers`` and ``takeover_names``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dashboard.resolution import MAX_POINTS, bucket_name, choose_bucket, rebucket, window_of, window_words
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE

LABEL_COLOURS = {NEGATIVE: "#d62728", NEUTRAL: "#7f7f7f", POSITIVE: "#2ca02c"}
MIN_TWEETS = 5  # a bucket with fewer tweets than this is drawn faded (trends.dashboard_min_tweets)
HEIGHT = 240
# "{bucket}" is the bucket the charts drew, in words: "minute", "12 hours" (resolution.bucket_name).
TITLE_COUNTS = "Tweets per {bucket}"
TITLE_SCORE = "Mean positive score per {bucket}"
TITLE_NEGATIVE = "Negative share per {bucket}, 95% interval (alerts marked)"
TITLE_SHARES = "Label shares"
# A keyword's split by model version; "{keyword}" is the keyword in view.
TITLE_VERSION_SCORE = "{keyword}: mean positive score per {bucket}, by model version"
TITLE_VERSION_NEGATIVE = "{keyword}: negative share per {bucket}, by model version, 95% interval"
Spec = dict
LEGEND = {"orient": "top", "title": None, "direction": "horizontal"}
_TITLES = {"model_version": "model version"}  # how a series column is named in tooltips and the marks' labels
# The D3 "category10" palette, the keywords' colours.
D3 = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")


def keyword_colours(keywords: list[str]) -> dict[str, str]:
    """A colour per keyword that does not change when the filter hides others (pass every keyword)."""
    palette = D3
    return {k: palette[i % len(palette)] for i, k in enumerate(sorted(keywords))}


@dataclass(frozen=True)
class View:
    """The trends as the time charts draw them: one row per keyword and bucket over the range in view."""

    buckets: pd.DataFrame  # resolution.rebucket's rows
    bucket: pd.Timedelta
    window: pd.Timedelta  # the trends' own window, the finest bucket
    min_tweets: int
    series: str = "keyword"  # the column a series is drawn for: "model_version" for a keyword's split

    @property
    def bucket_name(self) -> str:
        return bucket_name(self.bucket)

    @property
    def window_name(self) -> str:
        """The trends' window as an adjective: "1-minute", "2-hour"."""
        return window_words(self.window)

    def points(self) -> int:
        """The most points any one series has."""
        return 0 if self.buckets.empty else int(self.buckets.groupby(self.series).size().max())


def view(
    trends: pd.DataFrame,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    min_tweets: int = MIN_TWEETS,
    max_points: int = MAX_POINTS,
    series: str = "keyword",
) -> View:
    """The trends summed into the bucket that fits the range from ``start`` to ``end`` in ``max_points``.

    Args:
        trends: the trends rows in view (one per keyword, or other ``series``, and window).
        start: the start of the range in view (default: the first window's start).
        end: the end of the range in view (default: the last window's end).
        min_tweets: buckets with fewer tweets are drawn faded.
        series: the column a series is drawn for.
    """
    window = window_of(trends)
    if window is None:
        minute = pd.Timedelta(minutes=1)
        return View(rebucket(trends, minute, series=series), minute, minute, min_tweets, series)
    start = trends["window_start"].min() if start is None else start
    end = trends["window_end"].max() if end is None else end
    bucket = choose_bucket(end - window - start, window, max_points)
    return View(rebucket(trends, bucket, start, end - window, series), bucket, window, min_tweets, series)


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-ready dicts: times as UTC ISO strings, NaN as null."""
    out = df.copy()
    for c in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[c]):
            out[c] = out[c].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = out.astype(object).where(out.notna(), None)
    return out.to_dict("records")


def _colour(colours: dict[str, str], names, field: str = "keyword") -> dict:
    """A colour per series, in the order of ``colours`` (then the names it lacks, sorted)."""
    present = {str(k) for k in names}
    names = [k for k in colours if k in present] + sorted(present - set(colours))
    return {
        "field": field,
        "type": "nominal",
        "title": _TITLES.get(field, field),
        "scale": {"domain": names, "range": [colours.get(k, "#1f77b4") for k in names]},
        "legend": LEGEND,
    }


def _time(field: str = "bucket_start") -> dict:
    return {"field": field, "type": "temporal", "title": None, "scale": {"type": "utc"}, "axis": {"grid": False}}


def _chart(title: str, layers: list[dict], **extra) -> Spec:
    return {
        "$schema": "https://vega.github.io/schema/vega-lite/v6.json",
        "title": {"text": title, "anchor": "start"},
        "width": "container",
        "height": HEIGHT,
        "usermeta": {"embedOptions": {"renderer": "svg", "actions": False}},
        "layer": layers,
        **extra,
    }


def _shown(v: View) -> pd.DataFrame:
    """The buckets with what the layers need: a time label, and a run number per keyword that
    changes wherever a bucket has too few tweets, so each run of enough buckets is its own line."""
    rows = v.buckets.copy()
    rows["time"] = rows["bucket_start"].dt.strftime("%Y-%m-%d %H:%M UTC")
    rows["bucket_end"] = rows["bucket_start"] + v.bucket
    rows["enough"] = rows["n"] >= v.min_tweets
    rows["run"] = (~rows["enough"]).groupby(rows[v.series]).cumsum()
    return rows


def counts_chart(v: View, colours: dict[str, str] | None = None) -> Spec:
    """Tweets per bucket, the keywords' bars stacked: every tweet counted, however few."""
    colours = colours or keyword_colours(list(v.buckets["keyword"].unique()))
    rows = _shown(v)
    rows = rows.loc[rows["n"] > 0, ["keyword", "bucket_start", "bucket_end", "time", "n"]]
    # Stacked here, in the keywords' order, so each bar is a rectangle from its base to its top.
    rows = rows.sort_values(["bucket_start", "keyword"])
    rows["top"] = rows.groupby("bucket_start")["n"].cumsum()
    rows["base"] = rows["top"] - rows["n"]
    bars = {
        "name": "bars",
        "data": {"values": _records(rows)},
        "mark": {"type": "rect"},
        "encoding": {
            "x": _time(),
            "x2": {"field": "bucket_end"},
            "y": {"field": "top", "type": "quantitative", "title": None},
            "y2": {"field": "base"},
            "color": _colour(colours, v.buckets["keyword"].unique()),
            "tooltip": [{"field": "keyword"}, {"field": "time"}, {"field": "n", "title": "tweets", "format": ","}],
        },
    }
    return _chart(TITLE_COUNTS.format(bucket=v.bucket_name), [bars])


def _series(v: View, column: str, colours: dict[str, str], axis: dict, band: tuple[str, str] | None = None) -> list:
    """The layers of one value per keyword over the buckets: the band (if any), the line over runs of
    buckets with enough tweets, their points, and the faded points of buckets with too few."""
    rows = _shown(v)
    colour = _colour(colours, v.buckets[v.series].unique(), v.series)
    y = {"field": column, "type": "quantitative", "title": None, "scale": {"domain": [0, 1]}, "axis": axis}
    fmt = axis.get("format", ".2f")
    tooltip = [
        {"field": v.series, "title": _TITLES.get(v.series, v.series)},
        {"field": "time"},
        {"field": column, "format": fmt},
        {"field": "n", "title": "tweets", "format": ","},
    ]
    keep = [v.series, "bucket_start", "time", "n", "run", column, *(band or ())]
    enough = rows.loc[rows["enough"] & rows[column].notna(), keep]
    few = rows.loc[~rows["enough"] & (rows["n"] > 0), keep]
    layers = []
    if band is not None:
        layers.append(
            {
                "name": "band",
                "data": {"values": _records(enough)},
                "mark": {"type": "area", "opacity": 0.18, "interpolate": "linear"},
                "encoding": {
                    "x": _time(),
                    "y": {**y, "field": band[0]},
                    "y2": {"field": band[1]},
                    "color": {**colour, "legend": None},
                    "detail": [{"field": v.series}, {"field": "run"}],
                },
            }
        )
    layers.append(
        {
            "name": "line",
            "data": {"values": _records(enough)},
            "mark": {"type": "line", "strokeWidth": 1.5},
            "encoding": {"x": _time(), "y": y, "color": colour, "detail": {"field": "run"}},
        }
    )
    layers.append(
        {
            "name": "points",
            "data": {"values": _records(enough)},
            "mark": {"type": "circle", "size": 16, "opacity": 1},
            "encoding": {"x": _time(), "y": y, "color": {**colour, "legend": None}, "tooltip": tooltip},
        }
    )
    layers.append(
        {
            "name": "few",
            "data": {"values": _records(few)},
            "mark": {"type": "circle", "size": 16, "opacity": 0.25},
            "encoding": {"x": _time(), "y": y, "color": {**colour, "legend": None}, "tooltip": tooltip},
        }
    )
    return layers


def score_chart(v: View, colours: dict[str, str] | None = None) -> Spec:
    colours = colours or keyword_colours(list(v.buckets["keyword"].unique()))
    layers = _series(v, "mean_p_positive", colours, {"format": ".1f"})
    return _chart(TITLE_SCORE.format(bucket=v.bucket_name), layers)


def negative_chart(v: View, alerts: pd.DataFrame, colours: dict[str, str] | None = None) -> Spec:
    """The negative share per keyword with its 95% interval, and a red cross on each alerted window
    (at the window's own time and share)."""
    colours = colours or keyword_colours(list(v.buckets["keyword"].unique()))
    layers = _series(v, "negative_share", colours, {"format": ".0%"}, band=("negative_low", "negative_high"))
    if not alerts.empty:
        marked = alerts.loc[:, ["keyword", "window_start", "n", "negative_share", "z_score"]].copy()
        marked["time"] = marked["window_start"].dt.strftime("%Y-%m-%d %H:%M UTC")
        layers.append(
            {
                "name": "alerts",
                "data": {"values": _records(marked)},
                "mark": {"type": "point", "shape": "cross", "angle": 45, "size": 160, "filled": True, "opacity": 1},
                "encoding": {
                    "x": _time("window_start"),
                    "y": {"field": "negative_share", "type": "quantitative"},
                    "color": {"value": LABEL_COLOURS[NEGATIVE]},
                    "tooltip": [
                        {"field": "keyword"},
                        {"field": "time", "title": "alert: window from"},
                        {"field": "negative_share", "format": ".0%"},
                        {"field": "n", "title": "tweets"},
                        {"field": "z_score", "format": ".1f"},
                    ],
                },
            }
        )
    return _chart(TITLE_NEGATIVE.format(bucket=v.bucket_name), layers)


def version_colours(versions: list[str]) -> dict[str, str]:
    """A colour per model version, in the order given (the order in which they took over)."""
    return {str(version): D3[i % len(D3)] for i, version in enumerate(versions)}


def _takeover_layers(v: View, takeovers: pd.DataFrame, colours: dict[str, str]) -> list[dict]:
    """A dashed rule, in the version's colour, at the first tweet of each version that took over,
    named at its top (layers ``takeovers`` and ``takeover_names``)."""
    if takeovers.empty:
        return []
    rows = takeovers.loc[:, ["model_version", "first_at"]].copy()
    rows["time"] = rows["first_at"].dt.strftime("%Y-%m-%d %H:%M:%S UTC")
    rows["name"] = rows["model_version"].astype(str) + " takes over"
    colour = {**_colour(colours, v.buckets["model_version"].unique(), "model_version"), "legend": None}
    x = _time("first_at")
    data = {"values": _records(rows)}
    tooltip = [{"field": "model_version", "title": "model version"}, {"field": "time", "title": "first tweet"}]
    return [
        {
            "name": "takeovers",
            "data": data,
            "mark": {"type": "rule", "strokeDash": [5, 3], "strokeWidth": 1.5},
            "encoding": {"x": x, "color": colour, "tooltip": tooltip},
        },
        {
            "name": "takeover_names",
            "data": data,
            "mark": {"type": "text", "align": "left", "baseline": "top", "dx": 4, "dy": 2, "fontSize": 11},
            "encoding": {"x": x, "y": {"value": 0}, "text": {"field": "name"}, "color": colour},
        },
    ]


def version_charts(v: View, takeovers: pd.DataFrame, keyword: str, colours: dict[str, str]) -> tuple[Spec, Spec]:
    """A keyword's mean score and negative share with a series per model version (a :class:`View` of
    ``series="model_version"``), each later version's takeover marked on both."""
    marks = _takeover_layers(v, takeovers, colours)
    score = _series(v, "mean_p_positive", colours, {"format": ".1f"})
    negative = _series(v, "negative_share", colours, {"format": ".0%"}, band=("negative_low", "negative_high"))
    # The band comes first, and a layered chart takes its legend from the first layer: name the versions
    # there, drawn as the lines are rather than as faint areas.
    band = negative[0]["encoding"]
    band["color"] = {**band["color"], "legend": {**LEGEND, "symbolType": "stroke", "symbolOpacity": 1}}
    return (
        _chart(TITLE_VERSION_SCORE.format(keyword=keyword, bucket=v.bucket_name), [*score, *marks]),
        _chart(TITLE_VERSION_NEGATIVE.format(keyword=keyword, bucket=v.bucket_name), [*negative, *marks]),
    )


def shares_chart(trends: pd.DataFrame) -> Spec:
    """Per keyword, the share of each label over the windows shown, as stacked bars, with its tweet count."""
    sums = trends.groupby("keyword", sort=True)[["n", "n_negative", "n_neutral", "n_positive"]].sum()
    rows = []
    for label, column in ((NEGATIVE, "n_negative"), (NEUTRAL, "n_neutral"), (POSITIVE, "n_positive")):
        for keyword, row in sums.iterrows():
            share = row[column] / row["n"] if row["n"] > 0 else None
            rows.append({"keyword": str(keyword), "label": label, "share": share, "tweets": int(row[column])})
    order = [NEGATIVE, NEUTRAL, POSITIVE]
    bars = {
        "name": "bars",
        "data": {"values": rows},
        "transform": [{"calculate": f"indexof({order!r}, datum.label)", "as": "order"}],
        "mark": {"type": "bar", "tooltip": True},
        "encoding": {
            "y": {"field": "keyword", "type": "nominal", "title": None},
            "x": {
                "field": "share",
                "type": "quantitative",
                "stack": "zero",
                "title": None,
                "scale": {"domain": [0, 1]},
                "axis": {"format": ".0%"},
            },
            "color": {
                "field": "label",
                "type": "nominal",
                "scale": {"domain": order, "range": [LABEL_COLOURS[label] for label in order]},
                "legend": {"orient": "top", "title": None, "direction": "horizontal"},
            },
            "order": {"field": "order"},
            "tooltip": [
                {"field": "keyword"},
                {"field": "label"},
                {"field": "share", "format": ".0%"},
                {"field": "tweets", "format": ","},
            ],
        },
    }
    return _chart(TITLE_SHARES, [bars])


def series_points(spec: Spec, layer: str, series: str = "keyword") -> dict[str, int]:
    """How many marks a named layer of a spec draws per keyword, or other ``series`` (what the tests
    compare with the page)."""
    for part in spec["layer"]:
        if part.get("name") == layer:
            return pd.Series([r.get(series) for r in part["data"]["values"]]).value_counts().sort_index().to_dict()
    return {}
