"""Copy standard input to a log file rotated by size (``[logs]``): how run_pipeline.sh keeps each part's log bounded.

Usage: python -m sentiment.log_writer output/logs/relay.log [--max-bytes N] [--backups N] [--config FILE]

Each line is appended to the file as it comes (a line longer than 64 KiB in pieces); past
``logs.max_bytes`` the file becomes ``<file>.1`` (an older ``.1`` becomes ``.2``, ...) and at most
``logs.backups`` rotated files are kept. It ends when every writer of its input has closed it, and
ignores Ctrl-C and SIGTERM until then, so that a part's last words on its way out are kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from typing import BinaryIO

from sentiment.config import load_config
from sentiment.logs import LogsConfig, rotating_file, setup_logging

LONGEST_LINE = 1 << 16


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sentiment.log_writer", description=__doc__.splitlines()[0])
    p.add_argument("file", help="the log file (its folder is made)")
    p.add_argument("--max-bytes", type=int, help="rotate past this size (default from conf: logs.max_bytes)")
    p.add_argument("--backups", type=int, help="rotated files kept (default from conf: logs.backups)")
    p.add_argument("--config", help="TOML configuration file")
    return p


def copy_lines(source: BinaryIO, path: str, logs: LogsConfig) -> int:
    """Append each line of ``source`` to ``path``, rotated by ``logs``; return the lines copied."""
    handler = rotating_file(path, logs)
    handler.terminator = ""  # each line keeps its own end of line
    handler.setFormatter(logging.Formatter("%(message)s"))
    copied = 0
    try:
        while line := source.readline(LONGEST_LINE):
            handler.emit(logging.makeLogRecord({"msg": line.decode("utf-8", errors="replace")}))
            copied += 1
    finally:
        handler.close()
    return copied


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    options = {"max_bytes": args.max_bytes, "backups": args.backups}
    logs = dataclasses.replace(load_config(args.config).logs, **{k: v for k, v in options.items() if v is not None})
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)  # the part it copies is stopped; this ends at the end of its output
    copy_lines(sys.stdin.buffer, args.file, logs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
