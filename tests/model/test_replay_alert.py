"""conf/replay-alerts.toml lets a reader see one alert fire on the bundled replay, scored by the bundled model."""

from __future__ import annotations

import pandas as pd
import pytest

from ingest.replay import replay_tweets
from sentiment.config import load_config
from sentiment.trends import find_alerts, trends_from_tweets
from tests.conftest import ROOT, SAMPLE

pytestmark = [pytest.mark.model, pytest.mark.slow]


def scored_sample(predictor) -> pd.DataFrame:
    tweets = list(replay_tweets(SAMPLE))
    predictions = []
    for start in range(0, len(tweets), 256):
        predictions += [p.to_dict() for p in predictor.predict([t.text for t in tweets[start : start + 256]])]
    return pd.DataFrame(
        {
            "keyword": [t.keyword for t in tweets],
            "created_at": pd.to_datetime([t.created_at for t in tweets], utc=True),
            "sentiment": [p["sentiment"] for p in predictions],
            "p_positive": [p["p_positive"] for p in predictions],
        }
    )


def test_the_replay_profile_raises_one_alert_and_the_defaults_none(predictor):
    tweets = scored_sample(predictor)
    for name, expected in (("replay-alerts.toml", 1), ("pipeline.toml", 0)):
        config = load_config(ROOT / "conf" / name, env={}).trends
        trends = trends_from_tweets(tweets, pd.Timedelta(config.window))
        assert len(find_alerts(trends, None, config)) == expected, name
