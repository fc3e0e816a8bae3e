"""A container's health check of the model service: exit 0 when ``GET /health`` answers 200.

Usage: python -m model_api.healthcheck [--url http://127.0.0.1:8000] [--timeout 2] [--config FILE]

Sends the service's bearer token when one is configured (``$TWEETSENT_SERVICE_TOKEN`` or
``service.token_file``), so the check passes with and without a token, and whether or not
``/health`` is among ``service.open_paths``. The probe is :mod:`sentiment.health`, the one the job
and ``python -m stream.health`` use; it imports no model code, so it runs in a second.
"""

from __future__ import annotations

import argparse

from sentiment.health import check_command
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_api.healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("--url", help="the service's base URL (default: http://127.0.0.1:<service.port>)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    p.add_argument("--config", help="TOML configuration file")
    args = p.parse_args(argv)
    setup_logging()
    return check_command(args.url, args.timeout, args.config)


if __name__ == "__main__":
    raise SystemExit(main())
