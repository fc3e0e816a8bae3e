"""The dashboard's charts: Plotly figures built from trends and alerts frames, with no I/O."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE

LABEL_COLOURS = {NEGATIVE: "#d62728", NEUTRAL: "#7f7f7f", POSITIVE: "#2ca02c"}
TITLE_COUNTS = "Tweets per minute"
TITLE_SCORE = "Mean positive score per minute"
TITLE_NEGATIVE = "Negative share per minute (alerts marked)"
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


def per_minute(
    trends: pd.DataFrame, column: str, title: str, colours: dict[str, str] | None = None, **layout
) -> go.Figure:
    """One line per keyword of ``column`` over the windows, a marker at each window."""
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
    return per_minute(trends, "n", TITLE_COUNTS, colours, yaxis={"rangemode": "tozero"})


def score_chart(trends: pd.DataFrame, colours: dict[str, str] | None = None) -> go.Figure:
    return per_minute(trends, "mean_p_positive", TITLE_SCORE, colours, yaxis={"range": [0, 1]})


def negative_chart(trends: pd.DataFrame, alerts: pd.DataFrame, colours: dict[str, str] | None = None) -> go.Figure:
    """The negative share per keyword, with a red cross on each alerted window."""
    layout = {"yaxis": {"range": [0, 1], "tickformat": ".0%"}}
    fig = per_minute(trends, "negative_share", TITLE_NEGATIVE, colours, **layout)
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
