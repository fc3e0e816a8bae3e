"""Whether the model service answers ``GET /health``, as an exit status for shell scripts.

Usage: python -m stream.health URL [--timeout SECONDS]

Exits 0 when it answers 200, else 1 (and names the problem on stderr).
"""

from __future__ import annotations

import argparse
import sys

from sentiment.logs import setup_logging
from stream.scoring import service_health


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.health", description="Exit 0 when the model service is healthy.")
    p.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    args = p.parse_args(argv)
    setup_logging()
    problem = service_health(args.url, args.timeout)
    if problem is not None:
        print(f"{args.url}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
