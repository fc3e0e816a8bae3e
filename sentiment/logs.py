"""The logging set-up of every entry point: one format, INFO and above, to stderr.

Usage: ``setup_logging()`` first thing in an entry point's ``main`` (never at import time).
"""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every call at INFO: only their warnings are shown.
QUIET_LOGGERS = ("py4j",)


def setup_logging(level: int = logging.INFO) -> None:
    """Log records of ``level`` and above to stderr in :data:`FORMAT`.

    Like :func:`logging.basicConfig`, it leaves a root logger that already has handlers as it is.
    """
    logging.basicConfig(level=level, format=FORMAT)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
