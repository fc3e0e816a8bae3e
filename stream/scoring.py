"""Scoring tweets through the model service over HTTP, in batches, from Spark tasks.

:func:`score_texts` is the one function that talks to the service; it takes a client object with
``post(url, json=..., timeout=...)`` (a :class:`requests.Session` in the job, a fake in tests).
:func:`score_partitions` is the ``mapInPandas`` function: one HTTP session per task.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import pandas as pd

from sentiment.config import StreamConfig

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """The model service refused a request or stayed unreachable after every retry."""


class HttpClient(Protocol):
    def post(self, url: str, json: Any = ..., timeout: float = ...) -> Any: ...


@dataclass(frozen=True)
class ScoringOptions:
    service_url: str
    batch_size: int = StreamConfig.request_batch
    timeout: float = StreamConfig.request_timeout_seconds
    retries: int = StreamConfig.retries
    backoff: float = StreamConfig.backoff_seconds
    concurrency: int = StreamConfig.request_concurrency


def _post_with_retries(client: HttpClient, url: str, body: dict, options: ScoringOptions) -> dict:
    last: str = ""
    for attempt in range(options.retries + 1):
        if attempt:
            delay = options.backoff * 2 ** (attempt - 1) * (1 + random.random() * 0.25)
            log.warning(
                "retrying %s in %.2fs (attempt %d of %d): %s", url, delay, attempt + 1, options.retries + 1, last
            )
            time.sleep(delay)
        try:
            response = client.post(url, json=body, timeout=options.timeout)
        except Exception as e:  # connection refused, reset, timeout: worth a retry
            last = f"{type(e).__name__}: {e}"
            continue
        if response.status_code >= 500 or response.status_code == 429:
            last = f"HTTP {response.status_code}: {response.text[:200]}"
            continue
        if response.status_code >= 400:
            raise ServiceError(f"{url} refused the request: HTTP {response.status_code}: {response.text[:500]}")
        return response.json()
    raise ServiceError(f"{url} failed after {options.retries + 1} attempt(s); last error: {last}")


def score_texts(texts: list[str], client: HttpClient, options: ScoringOptions) -> list[float]:
    """Positive-probability of each text, in order, via ``POST /predict/batch``.

    Texts go in chunks of ``options.batch_size``, up to ``options.concurrency`` requests at a time.

    Raises:
        ServiceError: on a 4xx answer, a malformed answer, or when retries are exhausted.
    """
    url = options.service_url.rstrip("/") + "/predict/batch"
    chunks = [texts[i : i + options.batch_size] for i in range(0, len(texts), options.batch_size)]

    def one(chunk: list[str]) -> list[float]:
        body = _post_with_retries(client, url, {"texts": chunk}, options)
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, list) or len(results) != len(chunk):
            count = len(results) if isinstance(results, list) else "no"
            raise ServiceError(f"{url} answered {count} result(s) for {len(chunk)} text(s)")
        return [float(r["p_positive"]) for r in results]

    if options.concurrency <= 1 or len(chunks) <= 1:
        scored = [one(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
            scored = list(pool.map(one, chunks))
    return [p for chunk in scored for p in chunk]


def score_partitions(batches: Iterator[pd.DataFrame], options: ScoringOptions) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: add ``p_positive`` to each pandas batch, one session per task."""
    import requests
    from requests.adapters import HTTPAdapter

    with requests.Session() as session:
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, options.concurrency))
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        for pdf in batches:
            texts = pdf["text"].fillna("").astype(str).tolist()
            pdf = pdf.copy()
            pdf["p_positive"] = score_texts(texts, session, options) if texts else []
            yield pdf
