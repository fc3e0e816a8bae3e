"""Whether the model service answers ``GET /health``, as an exit status for shell scripts.

Usage: python -m stream.health URL [--timeout SECONDS] [--config FILE]

Exits 0 when it answers 200, else 1 (and names the problem on stderr), 2 on a configuration error.
Sends the service's bearer token (``$TWEETSENT_SERVICE_TOKEN`` or ``service.token_file``), so that
it works with ``service.open_paths = ""`` too. The same check as the containers'
``python -m model_api.healthcheck`` (both are :func:`sentiment.health.check_command`), with the URL
given first, as ``run_pipeline.sh`` calls it.
"""

from __future__ import annotations

import argparse

from sentiment.health import check_command
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.health", description="Exit 0 when the model service is healthy.")
    p.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    p.add_argument("--config", help="TOML configuration file (for service.token_file)")
    args = p.parse_args(argv)
    setup_logging()
    return check_command(args.url, args.timeout, args.config)


if __name__ == "__main__":
    raise SystemExit(main())
