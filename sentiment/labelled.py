"""The labels table: people's labels of scored tweets, appended under the output root as parquet.

``output/labels`` holds one small parquet file per write (a labelled tweet or a few), written under
a hidden name and renamed into place with a name no other writer can take, so two browser tabs or
two processes can label at once and a reader never sees half a file. ``pd.read_parquet`` reads the
folder; :meth:`LabelsTable.read` also keeps one label per keyword and tweet (the newest: a person
may change their mind). A label is Negative, Neutral, Positive or Skip (seen, not labelled: never
shown again, never learned from).

:func:`draw_tweets` picks what to label next: mostly the tweets the model is least sure of (nearest
an edge of the band), some at random, so that agreement with the model can be estimated without
bias from the random ones alone (:func:`agreement`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from sentiment.labels import BAND_HIGH, BAND_LOW, NEGATIVE, NEUTRAL, POSITIVE
from sentiment.parquet_folder import read_folder
from sentiment.schema import LABELS_COLUMNS

SKIP = "Skip"
LABEL_CHOICES: tuple[str, ...] = (NEGATIVE, NEUTRAL, POSITIVE, SKIP)
UNCERTAIN, RANDOM = "uncertain", "random"
RANDOM_SHARE = 0.3  # of the tweets drawn to label, this share at random
_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("keyword", pa.string()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("model_version", pa.string()),
        ("p_positive", pa.float64()),
        ("sentiment", pa.string()),
        ("drawn", pa.string()),
        ("labelled_at", pa.timestamp("us", tz="UTC")),
    ]
)
assert tuple(_SCHEMA.names) == LABELS_COLUMNS


class LabelsTable:
    """``folder`` (``output/labels``): append labels, read them back.

    Args:
        folder: the table's folder; created on the first write.
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def append(self, rows: Sequence[dict]) -> Path:
        """Write ``rows`` (each with the columns of :data:`sentiment.schema.LABELS_COLUMNS`;
        ``labelled_at`` defaults to now) as one new file; return its path.

        Raises:
            ValueError: naming the row and the field, for a label not in :data:`LABEL_CHOICES`,
                a row without an id or text, or a drawn reason other than uncertain or random.
        """
        if not rows:
            raise ValueError("no labels to write")
        now = pd.Timestamp.now(tz="UTC")
        clean = []
        for i, row in enumerate(rows):
            if row.get("label") not in LABEL_CHOICES:
                raise ValueError(f"label {i}: {row.get('label')!r} is not one of {', '.join(LABEL_CHOICES)}")
            if not row.get("id") or not isinstance(row.get("text"), str):
                raise ValueError(f"label {i}: a label needs the tweet's id and text")
            if row.get("drawn", RANDOM) not in (UNCERTAIN, RANDOM):
                raise ValueError(f"label {i}: drawn must be {UNCERTAIN!r} or {RANDOM!r}, got {row.get('drawn')!r}")
            clean.append({**{c: row.get(c) for c in LABELS_COLUMNS}, "id": str(row["id"])})
            clean[-1]["labelled_at"] = pd.Timestamp(row.get("labelled_at") or now).tz_convert("UTC")
            clean[-1]["drawn"] = row.get("drawn", RANDOM)
        table = pa.Table.from_pylist(clean, schema=_SCHEMA)
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"labels-{now:%Y%m%d%H%M%S%f}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        hidden = self.folder / f".{name}"
        pq.write_table(table, hidden)
        return Path(hidden.rename(self.folder / name))

    def read(self, keyword: str | None = None) -> pd.DataFrame:
        """Every label (of ``keyword`` when given), one per keyword and tweet, the newest; oldest first."""
        df = read_folder(self.folder, columns=list(LABELS_COLUMNS))
        if df.empty:
            return pd.DataFrame(
                {c: pd.Series(dtype=t.to_pandas_dtype()) for c, t in zip(_SCHEMA.names, _SCHEMA.types, strict=True)}
            )
        df["labelled_at"] = pd.to_datetime(df["labelled_at"], utc=True)
        if keyword is not None:
            df = df[df["keyword"].fillna("") == keyword]
        df = df.sort_values("labelled_at", kind="stable").drop_duplicates(["keyword", "id"], keep="last")
        return df.reset_index(drop=True)


def draw_tweets(
    tweets: pd.DataFrame,
    labelled_ids: set[str] | Sequence[str],
    n: int,
    random_share: float = RANDOM_SHARE,
    seed: int | None = None,
) -> pd.DataFrame:
    """Up to ``n`` tweets to label next, none already labelled: about ``random_share`` of them at
    random, the rest the ones whose ``p_positive`` is nearest an edge of the band (the model's least
    sure); a column ``drawn`` says which. Tweets are told apart by ``id``."""
    if not 0 <= random_share <= 1:
        raise ValueError(f"random_share must be within 0..1, got {random_share}")
    known = {str(i) for i in labelled_ids}
    pool = tweets[~tweets["id"].astype(str).isin(known)].drop_duplicates("id")
    if pool.empty or n <= 0:
        return pool.head(0).assign(drawn=pd.Series(dtype="string"))
    rng = np.random.default_rng(seed)
    k_random = min(len(pool), int(rng.binomial(n, random_share)) if n > 1 else int(rng.random() < random_share))
    picked = pool.sample(n=k_random, random_state=int(rng.integers(2**31))) if k_random else pool.head(0)
    rest = pool.drop(picked.index)
    edge = np.minimum((rest["p_positive"] - BAND_LOW).abs(), (rest["p_positive"] - BAND_HIGH).abs())
    unsure = rest.loc[edge.sort_values(kind="stable").index[: max(0, n - k_random)]]
    out = pd.concat([picked.assign(drawn=RANDOM), unsure.assign(drawn=UNCERTAIN)])
    return out.sample(frac=1, random_state=int(rng.integers(2**31))).reset_index(drop=True)


@dataclass(frozen=True)
class Agreement:
    """How often the served label matched a person's, on the tweets drawn at random."""

    labelled: int  # random-drawn tweets labelled (not skipped)
    agreed: int
    low: float  # 95% Wilson interval of the share agreed
    high: float

    @property
    def share(self) -> float:
        return self.agreed / self.labelled if self.labelled else float("nan")


Z_95 = 1.959964  # the normal quantile of a two-sided 95% interval


def wilson(k, n, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """The Wilson score interval of shares ``k / n``, element-wise (NaN where ``n`` is 0): (low, high)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """:func:`wilson` of one share (NaN, NaN when ``n`` is 0)."""
    low, high = wilson(k, n, z)
    return float(low), float(high)


def agreement(labels: pd.DataFrame) -> Agreement:
    """The served model's agreement with a person's labels of random-drawn tweets (skips left out);
    the uncertain ones are drawn where the model is least sure, so they would bias it."""
    rows = labels[(labels["drawn"] == RANDOM) & (labels["label"] != SKIP)]
    agreed = int((rows["label"] == rows["sentiment"]).sum())
    return Agreement(len(rows), agreed, *wilson_interval(agreed, len(rows)))


def confusion(labels: pd.DataFrame) -> pd.DataFrame:
    """Counts of (person's label, served label) over every labelled tweet (skips left out)."""
    classes = [NEGATIVE, NEUTRAL, POSITIVE]
    rows = labels[labels["label"] != SKIP]
    table = pd.DataFrame(0, index=pd.Index(classes, name="labelled"), columns=pd.Index(classes, name="served"))
    for (said, served), count in rows.groupby(["label", "sentiment"]).size().items():
        if said in classes and served in classes:
            table.loc[said, served] = int(count)
    return table
