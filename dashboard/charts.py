"""The dashboard's charts: Plotly figures built from trends and alerts frames, with no I/O."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE

LABEL_COLOURS = {NEGATIVE: "#d62728", NEUTRAL: "#7f7f7f", POSITIVE: "#2ca02c"}
# "{window}" is the trends' window as read from the data: "minute", "2-hour window" (trends.window).
TITLE_COUNTS = "Tweets per {window}"
TITLE_SCORE = "Mean positive score per {window}"
TITLE_NEGATIVE = "Negative share per {window} (alerts marked)"
TITLE_SHARES = "Label shares"


def keyword_colours(keywords: list[str]) -> dict[str, str]:
    """A colour per keyword that does not change when the filter hides others (pass every keyword)."""
    palette = px.colors.qualitative.D3
    return {k: palette[i % len(palette)] for i, k in enumerate(sorted(keywords))}


def _layout(fig: go.Figure, title: str, **kwargs) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        height=320,
        margin={"l": 40, "r": 10, "t": 60, "b": 30},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.02, "yanchor": "bottom"},
        template="plotly_white",
        **kwargs,
    )
    return fig


def window_name(trends: pd.DataFrame) -> str:
    """The trends' window in words, from its rows: "minute", "2-hour window", "5-minute window"."""
    if trends.empty:
        return "window"
    minutes = int((trends["window_end"].iloc[0] - trends["window_start"].iloc[0]) / pd.Timedelta(minutes=1))
    if minutes == 1:
        return "minute"
    return f"{minutes // 60}-hour window" if minutes % 60 == 0 else f"{minutes}-minute window"


def per_window(
    trends: pd.DataFrame, column: str, title: str, colours: dict[str, str] | None = None, **layout
) -> go.Figure:
    """One line per keyword of ``column`` over the windows, a marker at each window; ``title`` names the window."""
    title = title.format(window=window_name(trends))
    colours = colours or keyword_colours(list(trends["keyword"].unique()))
    fig = go.Figure()
    for keyword, rows in trends.groupby("keyword", sort=True):
        fig.add_trace(
            go.Scatter(
                x=rows["window_start"],
                y=rows[column],
                name=str(keyword),
                mode="lines+markers",
                marker={"size": 5},
                line={"color": colours.get(str(keyword))},
            )
        )
    return _layout(fig, title, showlegend=True, **layout)


def counts_chart(trends: pd.DataFrame, colours: dict[str, str] | None = None) -> go.Figure:
    return per_window(trends, "n", TITLE_COUNTS, colours, yaxis={"rangemode": "tozero"})


def score_chart(trends: pd.DataFrame, colours: dict[str, str] | None = None) -> go.Figure:
    return per_window(trends, "mean_p_positive", TITLE_SCORE, colours, yaxis={"range": [0, 1]})


def negative_chart(trends: pd.DataFrame, alerts: pd.DataFrame, colours: dict[str, str] | None = None) -> go.Figure:
    """The negative share per keyword, with a red cross on each alerted window."""
    layout = {"yaxis": {"range": [0, 1], "tickformat": ".0%"}}
    fig = per_window(trends, "negative_share", TITLE_NEGATIVE, colours, **layout)
    if not alerts.empty:
        fig.add_trace(
            go.Scatter(
                x=alerts["window_start"],
                y=alerts["negative_share"],
                name="alert",
                mode="markers",
                marker={"symbol": "x", "size": 13, "color": LABEL_COLOURS[NEGATIVE]},
                text=alerts["keyword"],
                hovertemplate="%{text}: %{y:.0%} negative<extra>alert</extra>",
            )
        )
    return fig


def shares_chart(trends: pd.DataFrame) -> go.Figure:
    """Per keyword, the share of each label over the windows shown, as stacked bars."""
    sums = trends.groupby("keyword", sort=True)[["n", "n_negative", "n_neutral", "n_positive"]].sum()
    fig = go.Figure()
    for label, column in ((NEGATIVE, "n_negative"), (NEUTRAL, "n_neutral"), (POSITIVE, "n_positive")):
        share = sums[column] / sums["n"].where(sums["n"] > 0)
        fig.add_trace(
            go.Bar(
                y=sums.index.astype(str),
                x=share,
                name=label,
                orientation="h",
                marker={"color": LABEL_COLOURS[label]},
                hovertemplate="%{y}: %{x:.0%}<extra>" + label + "</extra>",
            )
        )
    axis = {"range": [0, 1], "tickformat": ".0%"}
    return _layout(fig, TITLE_SHARES, barmode="stack", xaxis=axis, legend_traceorder="normal")
