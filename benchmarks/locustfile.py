"""Locust users for the model service: single tweets (POST /predict) and batches (POST /predict/batch).

Run through ``python -m benchmarks.load_test``, which starts the service, runs Locust headless on
loopback for a bounded time and plots the latency over time.
"""

from __future__ import annotations

import random
from pathlib import Path

from locust import HttpUser, constant, task

from sentiment.sentiment140 import iter_rows

SAMPLE = Path(__file__).resolve().parents[1] / "ingest" / "data" / "sample_tweets.csv"
TWEETS = [r.text for r in iter_rows(SAMPLE)]


class SingleTweetUser(HttpUser):
    """Sends one real tweet at a time, with no think time between requests."""

    wait_time = constant(0)

    @task
    def predict(self) -> None:
        self.client.post("/predict", json={"text": random.choice(TWEETS)}, name="/predict")


class BatchUser(HttpUser):
    """Sends 256 real tweets per request."""

    wait_time = constant(0)

    @task
    def predict_batch(self) -> None:
        start = random.randrange(0, len(TWEETS) - 256)
        self.client.post("/predict/batch", json={"texts": TWEETS[start : start + 256]}, name="/predict/batch")
