import dataclasses

import numpy as np
import pandas as pd
import pytest

from sentiment.config import ConfigError, TrendsConfig, load_config
from sentiment.schema import ALERTS_COLUMNS, TRENDS_COLUMNS
from sentiment.trends import describe_alert, find_alerts, trends_from_tweets

pytestmark = pytest.mark.unit

T0 = pd.Timestamp("2026-11-28 10:00", tz="UTC")
CONFIG = TrendsConfig(z_threshold=3.0, baseline_windows=30, min_baseline_windows=5, min_count=20, min_std=0.05)


def windows(keyword: str, shares: list[float], n: int | list[int] = 100, start: int = 0) -> pd.DataFrame:
    """Trends rows of one keyword, one per minute from T0 + start minutes."""
    counts = [n] * len(shares) if isinstance(n, int) else n
    rows = []
    for i, (share, count) in enumerate(zip(shares, counts, strict=True)):
        neg = round(share * count)
        rows.append(
            {
                "keyword": keyword,
                "window_start": T0 + pd.Timedelta(minutes=start + i),
                "window_end": T0 + pd.Timedelta(minutes=start + i + 1),
                "n": count,
                "n_negative": neg,
                "n_neutral": 0,
                "n_positive": count - neg,
                "mean_p_positive": 1 - share,
                "negative_share": neg / count,
            }
        )
    return pd.DataFrame(rows, columns=list(TRENDS_COLUMNS))


def calm(count: int = 30) -> list[float]:
    rng = np.random.default_rng(0)
    return list(np.clip(0.2 + rng.normal(0, 0.02, count), 0, 1))


def test_trends_from_tweets_counts_each_label_per_keyword_and_minute():
    tweets = pd.DataFrame(
        {
            "keyword": ["a", "a", "a", "b", None],
            "created_at": pd.to_datetime(
                [
                    "2009-04-06 22:19:05",
                    "2009-04-06 22:19:59",
                    "2009-04-06 22:20:00",
                    "2009-04-06 22:19:30",
                    "2009-04-06 22:19:30",
                ],
                utc=True,
            ),
            "sentiment": ["Negative", "Positive", "Neutral", "Negative", "Positive"],
            "p_positive": [0.1, 0.9, 0.5, 0.2, 0.8],
        }
    )
    trends = trends_from_tweets(tweets)
    assert list(trends.columns) == list(TRENDS_COLUMNS)
    first = trends[(trends.keyword == "a") & (trends.window_start == pd.Timestamp("2009-04-06 22:19", tz="UTC"))]
    assert first[["n", "n_negative", "n_neutral", "n_positive"]].iloc[0].tolist() == [2, 1, 0, 1]
    assert first["mean_p_positive"].iloc[0] == pytest.approx(0.5)
    assert first["negative_share"].iloc[0] == pytest.approx(0.5)
    assert first["window_end"].iloc[0] == pd.Timestamp("2009-04-06 22:20", tz="UTC")
    assert sorted(trends.keyword.unique()) == ["(no keyword)", "a", "b"]
    assert len(trends) == 4
    assert trends.n.sum() == 5


def test_a_spike_alerts_once_at_its_window():
    shares = calm(30) + [0.8] + calm(5)
    alerts = find_alerts(windows("python", shares), None, CONFIG)
    assert list(alerts.columns) == list(ALERTS_COLUMNS)
    assert len(alerts) == 1
    alert = alerts.iloc[0]
    assert alert.window_start == T0 + pd.Timedelta(minutes=30)
    assert alert.baseline_windows == 30
    assert alert.baseline_mean == pytest.approx(0.2, abs=0.02)
    assert alert.z_score >= 3.0
    assert "python" in describe_alert(alert) and "80%" in describe_alert(alert)


def test_calm_keyword_and_a_drop_in_negatives_do_not_alert():
    assert find_alerts(windows("python", calm(40)), None, CONFIG).empty
    assert find_alerts(windows("python", calm(30) + [0.0]), None, CONFIG).empty


def test_three_tweets_never_alarm():
    shares = calm(30) + [1.0]
    counts = [100] * 30 + [3]
    assert find_alerts(windows("python", shares, counts), None, CONFIG).empty


def test_small_windows_are_left_out_of_the_baseline():
    # Windows of 3 tweets that were all negative do not make the baseline noisy.
    shares = [0.2, 1.0] * 15 + [0.8]
    counts = [100, 3] * 15 + [100]
    alerts = find_alerts(windows("python", shares, counts), None, CONFIG)
    assert len(alerts) == 1
    assert alerts.iloc[0].baseline_windows == 15
    assert alerts.iloc[0].baseline_mean == pytest.approx(0.2)


def test_no_alert_before_enough_baseline_windows():
    assert find_alerts(windows("python", [0.2] * 4 + [0.9]), None, CONFIG).empty
    assert len(find_alerts(windows("python", [0.2] * 5 + [0.9]), None, CONFIG)) == 1


def test_a_flat_baseline_needs_more_than_noise():
    # A baseline of exactly 20% has no deviation; the floor min_std stops 30% from alerting.
    assert find_alerts(windows("python", [0.2] * 30 + [0.3]), None, CONFIG).empty
    assert len(find_alerts(windows("python", [0.2] * 30 + [0.36]), None, CONFIG)) == 1


def test_baseline_is_the_last_n_windows():
    # Old windows at 60% negative are outside the last 10; the recent baseline is 10%.
    config = dataclasses.replace(CONFIG, baseline_windows=10)
    shares = [0.6] * 20 + [0.1] * 10 + [0.5]
    alerts = find_alerts(windows("python", shares), None, config)
    assert len(alerts) == 1
    assert alerts.iloc[0].baseline_mean == pytest.approx(0.1)
    # With all 30 windows as baseline, 50% is not far above it.
    assert find_alerts(windows("python", shares), None, dataclasses.replace(CONFIG, baseline_windows=30)).empty


def test_history_gives_the_baseline_and_only_new_windows_alert():
    history = windows("python", calm(30) + [0.9])  # the spike at minute 30 was judged already
    new = windows("python", [0.2, 0.85], start=31)
    alerts = find_alerts(new, history, CONFIG)
    assert alerts.window_start.tolist() == [T0 + pd.Timedelta(minutes=32)]


def test_a_window_in_both_history_and_trends_is_judged_once_against_the_others():
    history = windows("python", calm(30) + [0.1])  # minute 30 first written with 10% negative
    new = windows("python", [0.9], start=30)  # ... and again, updated
    alerts = find_alerts(new, history, CONFIG)
    assert len(alerts) == 1
    assert alerts.iloc[0].baseline_windows == 30


def test_keywords_have_their_own_baselines():
    # 50% is normal for "bad news", a spike for "python".
    trends = pd.concat([windows("bad news", [0.5] * 30 + [0.5]), windows("python", [0.1] * 30 + [0.5])])
    alerts = find_alerts(trends.sample(frac=1, random_state=1), None, CONFIG)
    assert alerts.keyword.tolist() == ["python"]


def test_empty_input():
    assert find_alerts(windows("python", []), None, CONFIG).empty
    assert list(find_alerts(windows("python", []), None, CONFIG).columns) == list(ALERTS_COLUMNS)
    assert trends_from_tweets(pd.DataFrame(columns=["keyword", "created_at", "sentiment", "p_positive"])).empty


def test_trends_config_is_validated_and_overridable():
    config = load_config(env={"TWEETSENT_TRENDS__Z_THRESHOLD": "2.5", "TWEETSENT_TRENDS__WATERMARK": "30 seconds"})
    assert config.trends.z_threshold == 2.5
    assert config.trends.watermark == "30 seconds"
    assert config.trends.webhook_url == ""
    with pytest.raises(ConfigError, match="trends.window"):
        TrendsConfig(window="1 fortnight")
    with pytest.raises(ConfigError, match="min_baseline_windows"):
        TrendsConfig(baseline_windows=10, min_baseline_windows=11)
    with pytest.raises(ConfigError, match="webhook_url"):
        load_config(env={"TWEETSENT_TRENDS__WEBHOOK_URL": "ftp://x"})
