"""The job's one HTTP client of the model service: scoring in batches from Spark tasks, health, waiting.

:func:`score_texts` is the one function that talks to the service; it takes a client object with
``post(url, json=..., timeout=...)`` (a :class:`requests.Session` in the job, a fake in tests).
:func:`score_partitions` is the ``mapInPandas`` function: one HTTP session per task.
Requests are packed by count and by bytes (:func:`pack`), below the service's body limit, and a
text longer than the model reads is cut first. A text the service refuses in a way no retry can
fix (400, 413, 422 for it alone) is not scored: it gets a reason (``score_error``), and the job
sends it to the quarantine instead of failing the batch again and again.
``service_url`` may name several replicas (comma-separated): requests go round robin to those that
answer, a failing one is skipped for a cooldown (:mod:`stream.replicas`), and the job waits while
no replica at all is healthy.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from sentiment.config import Config, ConfigError, StreamConfig
from sentiment.health import auth_headers, service_health
from stream.replicas import Replicas, parse_urls, replicas_for

if TYPE_CHECKING:  # pandas only for the annotations: a health check need not load it
    import pandas as pd

log = logging.getLogger(__name__)


def check_client_limits(config: Config) -> None:
    """The job's requests fit the service of the same configuration: a body below its limit, and a
    timeout longer than its longest wait (a request given up while the service still works on it
    would be sent again and scored twice).

    Raises:
        ConfigError: naming both settings.
    """
    stream, service = config.stream, config.service
    if stream.request_max_bytes >= service.max_body_bytes:
        raise ConfigError(
            f"stream.request_max_bytes ({stream.request_max_bytes}) must be below service.max_body_bytes "
            f"({service.max_body_bytes})"
        )
    if stream.request_timeout_seconds <= service.timeout_seconds:
        raise ConfigError(
            f"stream.request_timeout_seconds ({stream.request_timeout_seconds:g}) must be longer than "
            f"service.timeout_seconds ({service.timeout_seconds}), the service's longest wait for a prediction"
        )


class ServiceError(RuntimeError):
    """The model service refused a request or stayed unreachable after every retry.

    ``replica_fault``: the replica itself failed (unreachable, 429, 5xx), so another may answer.
    """

    def __init__(self, message: str, replica_fault: bool = False, status: int | None = None) -> None:
        super().__init__(message)
        self.replica_fault = replica_fault
        self.status = status  # the HTTP status of an error answer

    @property
    def refused(self) -> bool:
        """Whether the service refused the request's content (retrying cannot help; a smaller one may)."""
        return self.status in REFUSED


# Answers about a request's content: split it, and a text refused alone is quarantined. Others
# (401, 403, 404: the job's configuration) stop the batch.
REFUSED = (400, 413, 422)
RETRIED_STATUSES = (429, 503)  # the service did not take the work: safe to send it again
_BODY_OVERHEAD = len('{"texts": []}')


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
    max_request_bytes: int = StreamConfig.request_max_bytes
    max_text_chars: int = StreamConfig.max_text_chars
    token: str = field(default="", repr=False)  # the service's bearer token (sentiment.config.service_token)

    @property
    def urls(self) -> tuple[str, ...]:
        """The replicas named by ``service_url`` (comma-separated)."""
        return parse_urls(self.service_url)


def make_session(options: ScoringOptions):
    """A pooled HTTP session that retries what the service did not take: a failed connection, 429
    and 503 (urllib3's ``Retry``: exponential backoff from ``options.backoff``, at most
    ``options.retries`` times). A read timeout, a connection dropped with the request sent and other
    5xx are not retried here: the service may have the work, and sending it again would score it
    twice. The replicas' failover and the batch's health wait handle those."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=options.retries,
        # Several replicas: a refused connection goes to the next replica at once, not after a backoff.
        connect=0 if len(options.urls) > 1 else None,
        read=0,
        other=0,
        backoff_factor=options.backoff,
        backoff_jitter=options.backoff / 4,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=None,  # POST too, for the errors above: the work was never taken
        raise_on_status=False,
        respect_retry_after_header=True,
    )
    session = requests.Session()
    session.headers.update(auth_headers(options.token))
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(4, options.concurrency), max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


SWITCHING_HEADER = "X-Model-Switching"  # the replica is rolling out a model: send the next requests elsewhere


def _post(client: HttpClient, url: str, body: dict, options: ScoringOptions) -> tuple[dict, bool]:
    """The answer's JSON, and whether the replica said it is switching models."""
    try:
        response = client.post(url, json=body, timeout=options.timeout)
    except Exception as e:  # refused, reset, timed out, retries exhausted
        raise ServiceError(f"{url} unreachable: {type(e).__name__}: {str(e)[:300]}", replica_fault=True) from None
    if response.status_code >= 400:
        status = response.status_code
        fault = status == 429 or status >= 500
        raise ServiceError(f"{url} answered HTTP {status}: {response.text[:500]}", replica_fault=fault, status=status)
    headers = getattr(response, "headers", None) or {}
    return response.json(), SWITCHING_HEADER in headers


def pack(texts: list[str], max_count: int, max_bytes: int) -> list[range]:
    """The requests for ``texts``, as ranges of their indices in order: at most ``max_count`` texts
    and ``max_bytes`` bytes of JSON body each (as ``requests`` encodes it: ASCII, so that a CJK
    character takes 6 bytes and an emoji 12). A text bigger than ``max_bytes`` goes alone."""
    chunks: list[range] = []
    start, size = 0, _BODY_OVERHEAD
    for i, text in enumerate(texts):
        cost = len(json.dumps(text)) + 2  # the quotes are in dumps; a comma and a space between texts
        if i > start and (i - start >= max_count or size + cost > max_bytes):
            chunks.append(range(start, i))
            start, size = i, _BODY_OVERHEAD
        size += cost
    if start < len(texts):
        chunks.append(range(start, len(texts)))
    return chunks


def score_texts(
    texts: list[str],
    client: HttpClient,
    options: ScoringOptions,
    replicas: Replicas | None = None,
    refused: dict[int, str] | None = None,
    versions: list[str | None] | None = None,
) -> list[float | None]:
    """Positive-probability of each text, in order, via ``POST /predict/batch``.

    Each text is cut to ``options.max_text_chars`` (the model reads at most its ``max_length``
    tokens anyway); requests are packed by :func:`pack`, up to ``options.concurrency`` at a time,
    each to the next replica in turn; a request that a replica fails (unreachable, 429, 5xx) goes
    to the next one, and that replica sits out its cooldown. A request the service refuses (400,
    413, 422) is split in halves and sent again, down to single texts.

    Retries on one replica are the client's (see :func:`make_session`).

    Args:
        refused: when given, a text the service refuses alone gets None, and its index the reason
            here; when not, that refusal is raised.
        versions: when given (as long as ``texts``), each text's ``model_version``, from the answer
            that scored it (None from a service that does not say).

    Raises:
        ServiceError: on an error answer, a malformed answer, or when no replica answered.
    """
    replicas = replicas or Replicas(options.urls, options.cooldown)
    texts = [t[: options.max_text_chars] for t in texts]
    chunks = pack(texts, options.batch_size, options.max_request_bytes)

    def one(chunk: range) -> list[float | None]:
        try:
            scores, version = _score_chunk([texts[i] for i in chunk], client, options, replicas)
            if versions is not None:
                versions[chunk.start : chunk.stop] = [version] * len(chunk)
            return scores
        except ServiceError as e:
            if not e.refused or refused is None:
                raise
            if len(chunk) == 1:
                refused[chunk[0]] = f"model service refused the text: {str(e)[:300]}"
                log.warning("the model service refused one text (%s); it goes to the quarantine", str(e)[:200])
                return [None]
            half = len(chunk) // 2
            return one(chunk[:half]) + one(chunk[half:])

    if options.concurrency <= 1 or len(chunks) <= 1:
        scored = [one(c) for c in chunks]
    else:
        with ThreadPoolExecutor(max_workers=options.concurrency) as pool:
            scored = list(pool.map(one, chunks))
    return [p for chunk in scored for p in chunk]


def _score_chunk(
    texts: list[str], client: HttpClient, options: ScoringOptions, replicas: Replicas
) -> tuple[list[float], str | None]:
    """One request's scores and the version of the model that scored them, from the first replica
    in turn that answers it."""
    body = {"texts": texts}
    errors = []
    for base in replicas.order():
        url = base + "/predict/batch"
        try:
            answer, switching = _post(client, url, body, options)
        except ServiceError as e:
            if not e.replica_fault:
                raise
            replicas.failed(base, str(e).removeprefix(url + " ")[:200])
            errors.append(str(e))
            continue
        if switching:  # its answer stands; the next requests go to the others while it rolls out a model
            replicas.failed(base, "it answered, on the model it served", what="is rolling out a model")
        else:
            replicas.succeeded(base)
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or len(results) != len(texts):
            count = len(results) if isinstance(results, list) else "no"
            raise ServiceError(f"{url} answered {count} result(s) for {len(texts)} text(s)")
        version = answer.get("model_version")
        return [float(r["p_positive"]) for r in results], str(version) if version is not None else None
    if len(errors) == 1:
        raise ServiceError(errors[0], replica_fault=True)
    raise ServiceError(f"none of {len(errors)} model service replicas answered: " + "; ".join(errors), True)


def score_partitions(batches: Iterator[pd.DataFrame], options: ScoringOptions) -> Iterator[pd.DataFrame]:
    """``mapInPandas`` body: add ``p_positive``, ``score_error`` (null, or why the service
    refused the text: then ``p_positive`` is null) and ``model_version`` (the model that scored the
    text, as its answer said) to each pandas batch, one session per task."""
    replicas = replicas_for(options.urls, options.cooldown)  # shared by the tasks of this Python worker
    with make_session(options) as session:
        for pdf in batches:
            texts = pdf["text"].fillna("").astype(str).tolist()
            refused: dict[int, str] = {}
            versions: list[str | None] = [None] * len(texts)
            pdf = pdf.copy()
            pdf["p_positive"] = score_texts(texts, session, options, replicas, refused, versions) if texts else []
            pdf["score_error"] = [refused.get(i) for i in range(len(texts))]
            pdf["model_version"] = versions
            yield pdf


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
