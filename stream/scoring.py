"""The job's one HTTP client of the model service: scoring in batches from Spark tasks, health, waiting.

:func:`score_texts` is the one function that talks to the service; it takes a client object with
``post(url, json=..., timeout=...)`` (a :class:`requests.Session` in the job, a fake in tests).
:func:`score_partitions` is the ``mapInPandas`` function: one HTTP session per task.
``service_url`` may name several replicas (comma-separated): requests go round robin to those that
answer, a failing one is skipped for a cooldown (:mod:`stream.replicas`), and the job waits while
no replica at all is healthy.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sentiment.config import StreamConfig
from stream.replicas import Replicas, parse_urls, replicas_for

if TYPE_CHECKING:  # pandas only for the annotations: a health check need not load it
    import pandas as pd

log = logging.getLogger(__name__)


class ServiceError(RuntimeError):
    """The model service refused a request or stayed unreachable after every retry.

    ``replica_fault``: the replica itself failed (unreachable, 429, 5xx), so another may answer.
    """

    def __init__(self, message: str, replica_fault: bool = False) -> None:
        super().__init__(message)
        self.replica_fault = replica_fault


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
    cooldown: float = StreamConfig.replica_cooldown_seconds
    token: str = field(default="", repr=False)  # the service's bearer token (sentiment.config.service_token)

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas named by ``service_url`` (comma-separated)."""
        return parse_urls(self.service_url)


def make_session(options: ScoringOptions):
    """A pooled HTTP session that retries connection failures, 429 and 5xx answers (urllib3's
    ``Retry``: exponential backoff from ``options.backoff``, at most ``options.retries`` times)."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=options.retries,
        # Several replicas: a refused connection goes to the next replica at once, not after a backoff.
        connect=0 if len(options.urls) > 1 else None,
        backoff_factor=options.backoff,
        backoff_jitter=options.backoff / 4,
        status_forcelist=(429, 500, 502, 503, 504),
        allowed_methods=None,  # POST /predict/batch is safe to repeat: scoring has no side effect
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    session.headers.update(auth_headers(options.token))
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, options.concurrency), max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _post(client: HttpClient, url: str, body: dict, options: ScoringOptions) -> dict:
    try:
        response = client.post(url, json=body, timeout=options.timeout)
    except Exception as e:  # refused, reset, timed out, retries exhausted
        raise ServiceError(f"{url} unreachable: {type(e).__name__}: {str(e)[:300]}", replica_fault=True) from None
    if response.status_code >= 400:
        fault = response.status_code == 429 or response.status_code >= 500
        raise ServiceError(f"{url} answered HTTP {response.status_code}: {response.text[:500]}", replica_fault=fault)
    return response.json()


def score_texts(
    texts: list[str], client: HttpClient, options: ScoringOptions, replicas: Replicas | None = None
) -> list[float]:
    """Positive-probability of each text, in order, via ``POST /predict/batch``.

    Texts go in chunks of ``options.batch_size``, up to ``options.concurrency`` requests at a time,
    each to the next replica in turn; a chunk that a replica fails (unreachable, 429, 5xx) goes to
    the next one, and that replica sits out its cooldown.

    Retries on one replica are the client's (see :func:`make_session`).

    Raises:
        ServiceError: on an error answer, a malformed answer, or when no replica answered.
    """
    replicas = replicas or Replicas(options.urls, options.cooldown)
    chunks = [texts[i : i + options.batch_size] for i in range(0, len(texts), options.batch_size)]

    def post_anywhere(body: dict) -> tuple[str, dict]:
        errors = []
        for base in replicas.order():
            url = base + "/predict/batch"
            try:
                answer = _post(client, url, body, options)
            except ServiceError as e:
                if not e.replica_fault:
                    raise
                replicas.failed(base, str(e).removeprefix(url + " ")[:200])
                errors.append(str(e))
                continue
            replicas.succeeded(base)
            return url, answer
        if len(errors) == 1:
            raise ServiceError(errors[0], replica_fault=True)
        raise ServiceError(f"none of {len(errors)} model service replicas answered: " + "; ".join(errors), True)

    def one(chunk: list[str]) -> list[float]:
        url, body = post_anywhere({"texts": chunk})
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
    replicas = replicas_for(options.urls, options.cooldown)  # shared by the tasks of this Python worker
    with make_session(options) as session:
        for pdf in batches:
            texts = pdf["text"].fillna("").astype(str).tolist()
            pdf = pdf.copy()
            pdf["p_positive"] = score_texts(texts, session, options, replicas) if texts else []
            yield pdf


def auth_headers(token: str) -> dict[str, str]:
    """The ``Authorization`` header of the service's bearer token; none without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def service_health(url: str, timeout: float = 5.0, token: str = "") -> str | None:
    """None when ``GET /health`` answers 200, else what went wrong (``HTTP 503``, ``ConnectionError``)."""
    import requests

    try:
        r = requests.get(url.rstrip("/") + "/health", timeout=timeout, headers=auth_headers(token))
    except requests.RequestException as e:
        return type(e).__name__
    return None if r.ok else f"HTTP {r.status_code}"


class ServiceOutage(RuntimeError):
    """The model service stayed down longer than the configured limit."""


_reported_down: set[str] = set()  # replicas the driver last logged as down


def replicas_health(urls: tuple[str, ...], token: str = "") -> dict[str, str | None]:
    """:func:`service_health` of each replica."""
    if len(urls) == 1:
        return {urls[0]: service_health(urls[0], token=token)}
    with ThreadPoolExecutor(max_workers=len(urls)) as pool:
        return dict(zip(urls, pool.map(lambda u: service_health(u, token=token), urls), strict=True))


def _any_healthy(urls: tuple[str, ...], token: str = "") -> str | None:
    """None when at least one replica is healthy (logging the ones that are down, when that changes);
    else what is wrong with each."""
    health = replicas_health(urls, token)
    down = {u: p for u, p in health.items() if p is not None}
    if len(down) < len(urls):
        if len(urls) > 1 and set(down) != _reported_down:
            for u, p in down.items():
                if u not in _reported_down:
                    log.warning("model service replica %s is down (%s); scoring with the others", u, p)
            for u in _reported_down - set(down):
                log.warning("model service replica %s is healthy again", u)
            _reported_down.clear()
            _reported_down.update(down)
        return None
    return "; ".join(f"{u}: {p}" for u, p in down.items()) if len(urls) > 1 else down[urls[0]]


def wait_for_service(
    url: str,
    what: str,
    limit: float = 0.0,
    stop: Callable[[], bool] = lambda: False,
    report_every: float = 5.0,
    cap: float = 5.0,
    token: str = "",
) -> float:
    """Wait until the service (any of its replicas, comma-separated in ``url``) is healthy, with capped
    exponential backoff; return the seconds waited.

    Logs one line every ``report_every`` seconds while it waits (how long, what is held).

    Raises:
        ServiceOutage: after ``limit`` seconds (0: never), or when ``stop()`` becomes true.
    """
    started = time.monotonic()
    urls = parse_urls(url)
    url = ", ".join(urls)
    problem = _any_healthy(urls, token)
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
        problem = _any_healthy(urls, token)
    waited = time.monotonic() - started
    log.warning("model service back after %.1fs; scoring %s", waited, what)
    return waited


def fetch_model_version(service_url: str, wait_seconds: float, token: str = "") -> str:
    """Ask the service (the first of its replicas to answer) which model it serves, waiting for it to come up.

    Raises:
        RuntimeError: if no replica answers within ``wait_seconds``.
    """
    import requests

    urls = parse_urls(service_url)
    deadline = time.monotonic() + wait_seconds
    last: dict[str, str] = {}
    while True:
        for url in urls:
            try:
                r = requests.get(url + "/model", timeout=5, headers=auth_headers(token))
                if r.ok:
                    info = r.json()
                    return f"{info.get('name', 'model')}@{info.get('version', 'unversioned')}"
                last[url] = f"HTTP {r.status_code}"
            except requests.RequestException as e:
                last[url] = type(e).__name__
        if time.monotonic() >= deadline:
            problems = ", ".join(f"{u} ({p})" for u, p in last.items())
            raise RuntimeError(
                f"model service at {problems} did not answer within {wait_seconds:.0f}s; "
                "start it with: python -m model_api"
            )
        time.sleep(0.5)
