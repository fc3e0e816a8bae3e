"""Whether the model service answers ``GET /health``, as an exit status for shell scripts.

Usage: python -m stream.health URL [--timeout SECONDS] [--config FILE]

Exits 0 when it answers 200, else 1 (and names the problem on stderr), 2 on a configuration error.
Sends the service's bearer token (``$TWEETSENT_SERVICE_TOKEN`` or ``service.token_file``), so that
it works with ``service.open_paths = ""`` too.
"""

from __future__ import annotations

import argparse
import sys

from sentiment.config import ConfigError, load_config, service_token
from sentiment.logs import setup_logging
from stream.scoring import service_health


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.health", description="Exit 0 when the model service is healthy.")
    p.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    p.add_argument("--config", help="TOML configuration file (for service.token_file)")
    args = p.parse_args(argv)
    setup_logging()
    try:
        token = service_token(load_config(args.config).service)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    problem = service_health(args.url, args.timeout, token)
    if problem is not None:
        print(f"{args.url}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
