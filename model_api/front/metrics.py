"""Prometheus metrics of the service: requests, latency, batch sizes, inference time, model version.

With several worker processes, set ``PROMETHEUS_MULTIPROC_DIR`` (``python -m model_api`` does) so
that ``GET /metrics`` adds up every worker.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1, 2, 5, 10)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)


class ServiceMetrics:
    """One set of metrics per app, on its own registry (so tests can build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tweetsent_requests", "HTTP requests by endpoint and status", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "tweetsent_request_seconds",
            "request latency by endpoint",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "tweetsent_batch_texts", "texts per forward pass batch", buckets=BATCH_BUCKETS, registry=self.registry
        )
        self.inference = Histogram(
            "tweetsent_inference_seconds",
            "time of one batched prediction",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.texts = Counter("tweetsent_texts", "texts scored", registry=self.registry)
        self.model = Gauge(
            "tweetsent_model_info",
            "the served model (value 1)",
            ["name", "version", "precision"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self.loading = Gauge(
            "tweetsent_model_loading",
            "a model being loaded beside the served one (value 1 while it loads)",
            ["model"],
            registry=self.registry,
            multiprocess_mode="max",
        )
        self._loading: str | None = None

    def observe_batch(self, size: int, seconds: float) -> None:
        self.batch_size.observe(size)
        self.inference.observe(seconds)
        self.texts.inc(size)

    def model_changed(self, old: Any, new: Any, loading: dict | None) -> None:
        """A swap's progress (:class:`model_api.runner.swap.Serving` before and after): the model loading
        (1 while it loads), and the served one (1; the one it replaced: 0)."""
        if self._loading is not None:
            self.loading.labels(self._loading).set(0)
        self._loading = loading["model"] if loading else None
        if self._loading is not None:
            self.loading.labels(self._loading).set(1)
        for served, value in ((old, 0), (new, 1)):
            if served is not None:
                name, version, precision = (str(served.info.get(k)) for k in ("name", "version", "precision"))
                self.model.labels(name, version, precision).set(value)

    def exposition(self) -> tuple[bytes, str]:
        """The metrics text and its content type; all workers' when running multi-process."""
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
            return generate_latest(registry), CONTENT_TYPE_LATEST
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
