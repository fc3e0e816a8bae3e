"""The model-service replicas a Spark task scores with: round robin over those that answer.

``stream.service_url`` (or ``--service-url``, repeated or comma-separated) names one or more
replicas. A :class:`Replicas` hands out their URLs in turn; a replica that fails sits out a cooldown
(its URL is logged with the reason) and is tried again when the cooldown is over. When every replica
is cooling down, the one that failed longest ago is tried: a request is never refused for want of a
replica. One :class:`Replicas` is kept per Python worker process (:func:`replicas_for`), so the
tasks that a worker runs one after another share what they learnt about the replicas.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

DEFAULT_COOLDOWN_SECONDS = 10.0


def parse_urls(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Service URLs from a comma-separated string or a list of them, de-duplicated, in order.

    Raises:
        ValueError: when no URL is given.
    """
    parts = [spec] if isinstance(spec, str) else list(spec)
    urls = [u.strip().rstrip("/") for part in parts for u in part.split(",")]
    urls = list(dict.fromkeys(u for u in urls if u))
    if not urls:
        raise ValueError("no model service URL given: set stream.service_url or pass --service-url URL[,URL...]")
    return tuple(urls)


class Replicas:
    """Round robin over service replicas, skipping those that failed less than ``cooldown`` seconds ago.

    Thread-safe: a task's concurrent requests share one instance.
    """

    def __init__(
        self,
        urls: Iterable[str],
        cooldown: float = DEFAULT_COOLDOWN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.urls = parse_urls(list(urls))
        self.cooldown = cooldown
        self._clock = clock
        self._failed_at: dict[str, float] = {}
        self._next = 0
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """The replicas to try for one request, best first: the next answering ones in turn, then the
        cooling ones, the one that failed longest ago first."""
        with self._lock:
            now = self._clock()
            start = self._next
            self._next = (self._next + 1) % len(self.urls)
            turn = self.urls[start:] + self.urls[:start]
            ready = [u for u in turn if now - self._failed_at.get(u, -1e18) >= self.cooldown]
            cooling = sorted((u for u in turn if u not in ready), key=lambda u: self._failed_at[u])
            return ready + cooling

    def failed(self, url: str, reason: str, what: str = "failed") -> None:
        """Record that ``url`` failed (or, ``what``, is otherwise busy); it is skipped for the cooldown."""
        with self._lock:
            first = url not in self._failed_at or self._clock() - self._failed_at[url] >= self.cooldown
            self._failed_at[url] = self._clock()
        if first and len(self.urls) > 1:
            log.warning(
                "model service replica %s %s (%s); sending its requests to the other replicas for %.0fs",
                url,
                what,
                reason,
                self.cooldown,
            )

    def succeeded(self, url: str) -> None:
        """Record that ``url`` answered: it is back in the rotation."""
        with self._lock:
            back = self._failed_at.pop(url, None) is not None
        if back and len(self.urls) > 1:
            log.warning("model service replica %s answers again", url)

    def down(self) -> list[str]:
        """The replicas in their cooldown now."""
        with self._lock:
            now = self._clock()
            return [u for u in self.urls if now - self._failed_at.get(u, -1e18) < self.cooldown]


_per_process: dict[tuple[tuple[str, ...], float], Replicas] = {}
_per_process_lock = threading.Lock()


def replicas_for(urls: tuple[str, ...], cooldown: float = DEFAULT_COOLDOWN_SECONDS) -> Replicas:
    """The one :class:`Replicas` of these URLs in this process (a Spark Python worker runs many tasks)."""
    with _per_process_lock:
        key = (urls, cooldown)
        if key not in _per_process:
            _per_process[key] = Replicas(urls, cooldown)
        return _per_process[key]
