"""The job's one HTTP client of the model service: scoring in batches from Spark tasks, health, waiting.

:func:`score_texts` is the one function that talks to the service; it takes a client object with
``post(url, json=..., timeout=...)`` (a :class:`requests.Session` in the job, a fake in tests).
:func:`score_partitions` is the ``mapInPandas`` function: one HTTP session per task.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
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


def make_session(options: ScoringOptions):
    """A pooled HTTP session that retries connection failures, 429 and 5xx answers (urllib3's
    ``Retry``: exponential backoff from ``options.backoff``, at most ``options.retries`` times)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=options.retries,
        backoff_factor=options.backoff,
        backoff_jitter=options.backoff / 4,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # POST /predict/batch is safe to repeat: scoring has no side effect
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, options.concurrency), max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _post(client: HttpClient, url: str, body: dict, options: ScoringOptions) -> dict:
    try:
        response = client.post(url, json=body, timeout=options.timeout)
    except Exception as e:  # refused, reset, timed out, retries exhausted
        raise ServiceError(f"{url} unreachable: {type(e).__name__}: {e}") from None
    if response.status_code >= 400:
        raise ServiceError(f"{url} answered HTTP {response.status_code}: {response.text[:500]}")
    return response.json()


def score_texts(texts: list[str], client: HttpClient, options: ScoringOptions) -> list[float]:
    """Positive-probability of each text, in order, via ``POST /predict/batch``.

    Texts go in chunks of ``options.batch_size``, up to ``options.concurrency`` requests at a time.

    Retries are the client's (see :func:`make_session`).

    Raises:
        ServiceError: on an error answer, a malformed answer, or an unreachable service.
    """
    url = options.service_url.rstrip("/") + "/predict/batch"
    chunks = [texts[i : i + options.batch_size] for i in range(0, len(texts), options.batch_size)]

    def one(chunk: list[str]) -> list[float]:
        body = _post(client, url, {"texts": chunk}, options)
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
    with make_session(options) as session:
        for pdf in batches:
            texts = pdf["text"].fillna("").astype(str).tolist()
            pdf = pdf.copy()
            pdf["p_positive"] = score_texts(texts, session, options) if texts else []
            yield pdf


def service_health(url: str, timeout: float = 5.0) -> str | None:
    """None when ``GET /health`` answers 200, else what went wrong (``HTTP 503``, ``ConnectionError``)."""
    import requests

    try:
        r = requests.get(url.rstrip("/") + "/health", timeout=timeout)
    except requests.RequestException as e:
        return type(e).__name__
    return None if r.ok else f"HTTP {r.status_code}"


class ServiceOutage(RuntimeError):
    """The model service stayed down longer than the configured limit."""


def wait_for_service(
    url: str,
    what: str,
    limit: float = 0.0,
    stop: Callable[[], bool] = lambda: False,
    report_every: float = 5.0,
    cap: float = 5.0,
) -> float:
    """Wait until the service is healthy, with capped exponential backoff; return the seconds waited.

    Logs one line every ``report_every`` seconds while it waits (how long, what is held).

    Raises:
        ServiceOutage: after ``limit`` seconds (0: never), or when ``stop()`` becomes true.
    """
    started = time.monotonic()
    problem = service_health(url)
    if problem is None:
        return 0.0
    delay, reported = 0.25, started
    log.warning("model service at %s is down (%s); holding %s until it answers", url, problem, what)
    while problem is not None:
        waited = time.monotonic() - started
        if stop():
            raise ServiceOutage(f"stopped while waiting for the model service ({problem}); {what} is not written")
        if limit and waited >= limit:
            raise ServiceOutage(
                f"model service at {url} down for {waited:.0f}s ({problem}), "
                f"over stream.outage_limit_seconds = {limit:g}"
            )
        if time.monotonic() - reported >= report_every:
            log.warning("model service down for %.0fs (%s); still holding %s", waited, problem, what)
            reported = time.monotonic()
        time.sleep(delay)
        delay = min(cap, delay * 2)
        problem = service_health(url)
    waited = time.monotonic() - started
    log.warning("model service back after %.1fs; scoring %s", waited, what)
    return waited


def fetch_model_version(service_url: str, wait_seconds: float) -> str:
    """Ask the service which model it serves, waiting for it to come up.

    Raises:
        RuntimeError: if the service does not answer within ``wait_seconds``.
    """
    import requests

    deadline = time.monotonic() + wait_seconds
    last = ""
    while True:
        try:
            r = requests.get(service_url.rstrip("/") + "/model", timeout=5)
            if r.ok:
                info = r.json()
                return f"{info.get('name', 'model')}@{info.get('version', 'unversioned')}"
            last = f"HTTP {r.status_code}"
        except requests.RequestException as e:
            last = type(e).__name__
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"model service at {service_url} did not answer within {wait_seconds:.0f}s "
                f"({last}); start it with: python -m model_api"
            )
        time.sleep(0.5)
