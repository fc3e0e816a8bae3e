"""The "Try it" page: type or paste tweets, or upload a CSV of them, and see what the running service says.

Each text goes to the model service's ``POST /predict/batch`` (the URL the job scores with, and its
bearer token when one is set), in requests of at most :data:`CHUNK` texts; the answer shows each
label with its three probabilities and the model version that scored it, and a CSV comes back with
those columns added to the uploaded ones.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pandas as pd
import streamlit as st

from dashboard.tables import html_table

CHUNK = 64  # texts per request, well under the service's limit
MAX_TEXTS = 5000  # texts scored from one upload
TIMEOUT_SECONDS = 60.0


class ServiceError(Exception):
    """The service could not score the texts: the message says why, in words a person can act on."""


def score(service_url: str, texts: list[str], token: str = "") -> pd.DataFrame:
    """The service's answer for each text: sentiment, p_positive, the three probabilities, model_version.

    Raises:
        ServiceError: the service does not answer, or refuses the texts (its reason included).
    """
    url = service_url.split(",")[0].strip().rstrip("/") + "/predict/batch"
    rows = []
    for start in range(0, len(texts), CHUNK):
        body = json.dumps({"texts": texts[start : start + CHUNK]}).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
                found = json.load(answer)
        except urllib.error.HTTPError as e:
            try:
                reason = json.load(e).get("error", e.reason)
            except (ValueError, AttributeError):
                reason = e.reason
            raise ServiceError(f"the model service at {url} refused the texts ({e.code}): {reason}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise ServiceError(
                f"the model service at {url} does not answer ({reason}); start it with `python -m model_api` "
                "or point the dashboard at it (stream.service_url)"
            ) from None
        for result in found["results"]:
            probabilities = result.get("probabilities") or {}
            rows.append(
                {
                    "sentiment": result["sentiment"],
                    "p_positive": result["p_positive"],
                    **{f"probability_{k}": v for k, v in probabilities.items()},
                    "model_version": found.get("model_version", ""),
                }
            )
    return pd.DataFrame(rows)


def texts_of(typed: str, upload) -> tuple[pd.DataFrame, str | None]:
    """The rows to score: the uploaded CSV (it needs a ``text`` column), else one row per typed
    line; and what is wrong with the input, if anything."""
    if upload is not None:
        try:
            df = pd.read_csv(upload, dtype=str, keep_default_na=False)
        except (ValueError, UnicodeDecodeError) as e:
            return pd.DataFrame(), f"{upload.name} is not a CSV file pandas can read: {e}"
        if "text" not in df.columns:
            return pd.DataFrame(), f"{upload.name} has no 'text' column (its columns: {', '.join(df.columns)})"
        if len(df) > MAX_TEXTS:
            return pd.DataFrame(), f"{upload.name} has {len(df):,} rows; score at most {MAX_TEXTS:,} at a time"
        return df, None
    lines = [line.strip() for line in typed.splitlines() if line.strip()]
    if not lines:
        return pd.DataFrame(), "type or paste a tweet (one per line), or upload a CSV with a text column"
    return pd.DataFrame({"text": lines}), None


def try_page(service_url: str, token: str = "") -> None:
    st.subheader("Try the model")
    st.caption(f"Scored by the running model service at {service_url.split(',')[0]}.")
    typed = st.text_area("Tweets, one per line", key="try-text", height=140)
    upload = st.file_uploader("or a CSV file with a text column", type=["csv"], key="try-csv")
    rows, problem = texts_of(typed, upload)
    if upload is not None:  # said as soon as the file is in, before anyone clicks Score
        if problem:
            st.error(problem)
        else:
            st.caption(
                f"{upload.name}: {len(rows):,} tweets to score", help="the CSV's other columns come back as they are"
            )
    if not st.button("Score", key="try-score", type="primary"):
        return
    if problem:
        if upload is None:
            st.error(problem)
        return
    try:
        scored = score(service_url, rows["text"].tolist(), token)
    except ServiceError as e:
        st.error(str(e))
        return
    out = pd.concat([rows.reset_index(drop=True), scored], axis=1)
    st.html(html_table(out.assign(p_positive=out["p_positive"].map("{:.2f}".format)), name="scored"))
    buffer = io.StringIO()
    out.to_csv(buffer, index=False)
    name = f"{upload.name.rsplit('.', 1)[0]}-scored.csv" if upload is not None else "scored.csv"
    st.download_button("Download as CSV", buffer.getvalue(), file_name=name, mime="text/csv", key="try-download")
