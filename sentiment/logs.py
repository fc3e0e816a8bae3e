"""The logging set-up of every entry point (one format, INFO and above, to stderr) and the logs' rotation by size.

Usage: ``setup_logging()`` first thing in an entry point's ``main`` (never at import time);
``rotating_file(path, load_config().logs)`` for a log file that is rotated past ``logs.max_bytes``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from logging.handlers import RotatingFileHandler
from pathlib import Path

from sentiment.config_error import ConfigError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Libraries that log every call at INFO: only their warnings are shown.
QUIET_LOGGERS = ("py4j",)


@dataclass(frozen=True)
class LogsConfig:
    """``[logs]``: the size a log file may reach before it is rotated, and how many rotated files are kept."""

    max_bytes: int = 10 * 1024 * 1024  # a log past this size is renamed <name>.1 (an older .1 becomes .2, ...)
    backups: int = 5  # rotated files kept per log; the oldest beyond them is deleted

    def __post_init__(self) -> None:
        if self.max_bytes < 1024:
            raise ConfigError(f"logs.max_bytes must be at least 1024, got {self.max_bytes}")
        if self.backups < 1:
            raise ConfigError(f"logs.backups must be at least 1, got {self.backups}")


def setup_logging(level: int = logging.INFO) -> None:
    """Log records of ``level`` and above to stderr in :data:`FORMAT`.

    Like :func:`logging.basicConfig`, it leaves a root logger that already has handlers as it is.
    """
    logging.basicConfig(level=level, format=FORMAT)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def rotating_file(path: str | Path, logs: LogsConfig) -> RotatingFileHandler:
    """A handler appending to ``path`` (its folder made) that rotates it past ``logs.max_bytes``: ``path``
    becomes ``path.1``, an older ``path.1`` becomes ``path.2``, up to ``logs.backups`` files kept."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return RotatingFileHandler(path, maxBytes=logs.max_bytes, backupCount=logs.backups, encoding="utf-8")
