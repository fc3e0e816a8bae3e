"""Error logging that bad input cannot flood: each kind of error once per interval, then a count.

The first error of a kind in an interval is logged (with its traceback, when it has one); the
others of that kind are only counted, and the next error of that kind after the interval logs
``N more of <kind> in the last 60 s`` with its own line. Messages name the error, the route and
the limit, never the request's text.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Kind:
    logged_at: float
    suppressed: int = 0


class ErrorLog:
    """Rate-limited logging by error kind. ``clock`` is injectable so tests need not sleep."""

    def __init__(
        self, logger: logging.Logger, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.logger = logger
        self.interval = interval
        self._clock = clock
        self._kinds: dict[str, _Kind] = {}
        self._lock = threading.Lock()

    def report(
        self, kind: str, message: str, level: int = logging.WARNING, exc_info: BaseException | None = None
    ) -> bool:
        """Log ``message`` if ``kind`` was not logged in the last interval, else count it.

        Returns whether a line was written.
        """
        now = self._clock()
        with self._lock:
            seen = self._kinds.get(kind)
            if seen is not None and now - seen.logged_at < self.interval:
                seen.suppressed += 1
                return False
            suppressed = seen.suppressed if seen is not None else 0
            elapsed = now - seen.logged_at if seen is not None else 0.0
            self._kinds[kind] = _Kind(logged_at=now)
        if suppressed:
            self.logger.log(level, "%d more of %s in the last %.0f s", suppressed, kind, elapsed)
        self.logger.log(level, "%s: %s", kind, message, exc_info=exc_info)
        return True
