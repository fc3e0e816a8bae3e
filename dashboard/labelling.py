"""The labelling page: a person labels a keyword's scored tweets, one click or key each.

Tweets are drawn from the output a few at a time (:func:`sentiment.labelled.draw_tweets`: mostly
the ones the model is least sure of, some at random, never one already labelled) and each label is
appended to the labels table at once (:class:`sentiment.labelled.LabelsTable`), so nothing is lost
when the tab closes and two tabs can label together. Beside it: how often the served model agrees
with the labels of the random-drawn tweets, with its 95% interval, and the confusion matrix, so a
person sees whether adapting (``python -m experiments.adapt``) is worth it.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import streamlit as st

from dashboard.data import OutputReader
from dashboard.tables import html_table
from sentiment.labelled import LABEL_CHOICES, SKIP, LabelsTable, agreement, confusion, draw_tweets
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE

POOL = 2000  # the newest tweets of the keyword drawn from
QUEUE = 5  # tweets drawn at a time; the first is the one being labelled
SHORTCUTS = {NEGATIVE: "1", NEUTRAL: "2", POSITIVE: "3", SKIP: "0"}


def _queue_key(keyword: str) -> str:
    return f"label-queue::{keyword}"


def _next_tweets(data: OutputReader, labels: pd.DataFrame, keyword: str) -> pd.DataFrame:
    """The keyword's queue: kept in the session, refilled when empty (never with a tweet in ``labels``)."""
    key = _queue_key(keyword)
    queue = st.session_state.get(key)
    if queue is None or queue.empty:
        queue = draw_tweets(data.tweets_of(keyword, POOL), set(labels["id"].astype(str)), QUEUE)
        st.session_state[key] = queue
    return queue


def _label(table: LabelsTable, keyword: str, tweet: pd.Series, label: str) -> None:
    """Append the label at once, then take the tweet off the queue."""
    table.append(
        [
            {
                "id": str(tweet["id"]),
                "keyword": keyword,
                "text": tweet["text"],
                "label": label,
                "model_version": tweet.get("model_version"),
                "p_positive": float(tweet["p_positive"]),
                "sentiment": tweet["sentiment"],
                "drawn": tweet["drawn"],
            }
        ]
    )
    key = _queue_key(keyword)
    st.session_state[key] = st.session_state[key].iloc[1:]
    st.session_state["labelled-count"] = st.session_state.get("labelled-count", 0) + 1


def show_agreement(labels: pd.DataFrame) -> None:
    """The served model against the person's labels: agreement on the random draws, and the matrix."""
    found = agreement(labels)
    left, right = st.columns([1, 2])
    if found.labelled:
        left.metric(
            "Model agrees with you",
            f"{found.share:.0%}",
            help="on the tweets drawn at random (not the uncertain ones), skips left out",
        )
        left.caption(
            f"95% interval {found.low:.0%} to {found.high:.0%}, from {found.labelled} random-drawn labels "
            f"({len(labels)} labels in all)"
        )
    else:
        left.metric("Model agrees with you", "–")
        left.caption(f"no random-drawn label yet ({len(labels)} labels in all)")
    matrix = confusion(labels)
    shown = matrix.reset_index().rename(columns={"labelled": "you said"})
    shown.columns = ["you said", *(f"served {c}" for c in matrix.columns)]
    right.html(html_table(shown, name="confusion"))


def admin_allowed(service_url: str, token: str) -> bool:
    """Whether the service's admin route would answer this dashboard: with a token, or (without
    one) only when every replica is on this machine (the route answers loopback clients alone)."""
    if token:
        return True
    hosts = [urlsplit(u.strip()).hostname for u in service_url.split(",") if u.strip()]
    return bool(hosts) and all(h in ("127.0.0.1", "::1", "localhost") for h in hosts)


def show_rollout(service_url: str, token: str) -> None:
    """A model directory rolled out to every replica, one at a time (``python -m model_api.rollout``);
    shown only where the admin route would answer."""
    if not admin_allowed(service_url, token):
        return
    from model_api.rollout import rollout, summary

    with st.expander("Roll out a model (an adapted one: python -m experiments.adapt)"):
        model = st.text_input("Model directory", key="rollout-model", placeholder="models/KEYWORD")
        if st.button("Roll out", key="rollout"):
            path = Path(model).expanduser()
            if not model.strip() or not path.is_dir():
                st.error(f"{model!r} is not a model directory on this machine")
                return
            urls = [u.strip().rstrip("/") for u in service_url.split(",") if u.strip()]
            with st.spinner(f"loading {path} beside the served model, then switching ..."):
                steps = rollout(urls, str(path.resolve()), token)
            text = summary(steps, str(path.resolve()))
            ok = all(step.outcome == "serving" for step in steps)
            (st.success if ok else st.error)(text.replace("\n", "  \n"))


def labelling_page(data: OutputReader, table: LabelsTable, service_url: str = "", token: str = "") -> None:
    """Pick a keyword, label its tweets one by one, see how the model does on them."""
    st.subheader("Label tweets")
    keywords = sorted(data.trends()["keyword"].unique())
    if not keywords:
        st.info("No tweets to label yet: the job has written no trends.")
        return
    keyword = st.selectbox("Keyword to label", keywords, key="label-keyword")
    if service_url:
        show_rollout(service_url, token)
    labels = table.read(keyword)
    show_agreement(labels)
    queue = _next_tweets(data, labels, keyword)
    if queue.empty:
        st.info(f"Every tweet of {keyword!r} in the output is labelled ({len(labels)}).")
        return
    tweet = queue.iloc[0]
    st.html(
        f'<div data-testid="label-tweet" data-id="{html.escape(str(tweet["id"]))}" style="font-size:1.2rem;'
        'padding:0.8rem 1rem;border:1px solid rgba(49,51,63,0.2);border-radius:0.5rem">'
        f"{html.escape(str(tweet['text']))}</div>"
    )
    st.caption(
        f"served {tweet['sentiment']} ({tweet['p_positive']:.2f}) by {tweet.get('model_version') or 'unknown'}; "
        f"drawn {'at random' if tweet['drawn'] == 'random' else 'where the model is least sure'}. "
        "Keys: 1 Negative, 2 Neutral, 3 Positive, 0 Skip."
    )
    for column, choice in zip(st.columns(len(LABEL_CHOICES)), LABEL_CHOICES, strict=True):
        column.button(
            choice,
            key=f"label-{choice}",
            shortcut=SHORTCUTS[choice],
            on_click=_label,
            args=(table, keyword, tweet, choice),
            width="stretch",
            type="secondary" if choice == SKIP else "primary",
        )
    if len(queue) > 1:
        st.caption("Next: " + " · ".join(html.escape(str(t))[:60] for t in queue["text"].iloc[1:]))
