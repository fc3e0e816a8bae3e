"""The job judges windows batch by batch against the baselines it keeps; the alerts must be those of
the whole output judged at once (sentiment.trends.find_alerts), however sparse the keyword."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sentiment.config import TrendsConfig
from sentiment.trends import find_alerts
from stream.trends import Baselines

pytestmark = pytest.mark.unit


def sparse_trends() -> pd.DataFrame:
    """240 two-hour windows of one keyword: two tweets in most, 12 in every 8th, the last of those a spike."""
    rng = np.random.default_rng(3)
    start = pd.Timestamp("2009-04-06", tz="UTC") + pd.to_timedelta(np.arange(240) * 2, unit="h")
    n = np.where(np.arange(240) % 8 == 0, 12, 2)
    negative = rng.binomial(n, 0.3)
    negative[232] = 11  # 11 of 12: far above a baseline near 30%
    return pd.DataFrame(
        {
            "keyword": "(no keyword)",
            "window_start": start,
            "window_end": start + pd.Timedelta(hours=2),
            "n": n,
            "n_negative": negative,
            "n_neutral": 0,
            "n_positive": n - negative,
            "mean_p_positive": 0.5,
            "negative_share": negative / n,
        }
    )


@pytest.mark.parametrize("per_batch", [1, 7])
def test_alerts_batch_by_batch_are_those_of_the_whole_output(tmp_path, per_batch):
    config = TrendsConfig(window="2 hours", min_count=10)
    trends = sparse_trends()
    whole = find_alerts(trends, None, config)
    assert list(whole["window_start"]) == [trends["window_start"][232]]

    baselines = Baselines(str(tmp_path / "trends"), config.baseline_windows, config.min_count)
    found = []
    for start in range(0, len(trends), per_batch):
        batch = trends.iloc[start : start + per_batch]
        found.append(find_alerts(batch, baselines.frame(), config))
        baselines.add(batch)
    streamed = pd.concat(found, ignore_index=True)
    pd.testing.assert_frame_equal(streamed.reset_index(drop=True), whole.reset_index(drop=True))
    # What it keeps is bounded: the last baseline_windows windows that can count, no more.
    assert len(baselines.frame()) == config.baseline_windows
    assert (baselines.frame()["n"] >= config.min_count).all()


def test_baselines_resume_from_the_output_folder(tmp_path):
    config = TrendsConfig(window="2 hours", min_count=10)
    trends = sparse_trends()
    folder = tmp_path / "trends"
    folder.mkdir()
    trends.iloc[:200].to_parquet(folder / "batch-0.parquet", index=False)
    restarted = Baselines(str(folder), config.baseline_windows, config.min_count)
    alerts = find_alerts(trends.iloc[200:], restarted.frame(), config)
    assert list(alerts["window_start"]) == [trends["window_start"][232]]
