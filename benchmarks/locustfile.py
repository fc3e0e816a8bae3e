"""Locust users for the model service: single tweets (POST /predict) and batches (POST /predict/batch).

Run through ``python -m benchmarks.load_test``, which starts the service, runs Locust headless on
loopback for a bounded time and plots the latency over time. ``TWEETSENT_LOAD_USER_RATE`` sets
how many requests per second each single-tweet user sends (1.0 by default; 0 sends the next
request as soon as the last is answered).

Locust starts the users of each spawn step (``--spawn-rate`` of them) at the same instant, and a
paced user keeps its start's phase: 500 users spawned 50 per second would all send within the
same few milliseconds of every second, a burst of 500 requests and then silence (Locust's
issues #1281 and #2767 describe it). Independent users do not keep step, so each paced user first
waits a random part of its period; ``TWEETSENT_LOAD_ALIGNED=1`` keeps Locust's bursts.
"""

from __future__ import annotations

import os
import random

import gevent
from locust import FastHttpUser, constant, constant_throughput, task

from ingest.replay import BUNDLED_SAMPLE
from sentiment.sentiment140 import iter_rows

TWEETS = [r.text for r in iter_rows(BUNDLED_SAMPLE)]
USER_RATE = float(os.environ.get("TWEETSENT_LOAD_USER_RATE", "1.0"))
ALIGNED = os.environ.get("TWEETSENT_LOAD_ALIGNED", "") == "1"


class SingleTweetUser(FastHttpUser):
    """Sends one real tweet per request, ``USER_RATE`` requests per second."""

    wait_time = constant_throughput(USER_RATE) if USER_RATE > 0 else constant(0)

    def on_start(self) -> None:
        if USER_RATE > 0 and not ALIGNED:
            gevent.sleep(random.uniform(0, 1 / USER_RATE))  # a phase of its own

    @task
    def predict(self) -> None:
        self.client.post("/predict", json={"text": random.choice(TWEETS)}, name="/predict")


class BatchUser(FastHttpUser):
    """Sends 256 real tweets per request, with no think time."""

    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 120.0

    @task
    def predict_batch(self) -> None:
        start = random.randrange(0, len(TWEETS) - 256)
        self.client.post("/predict/batch", json={"texts": TWEETS[start : start + 256]}, name="/predict/batch")
