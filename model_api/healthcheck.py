"""A container's health check of the model service: exit 0 when ``GET /health`` answers 200.

Usage: python -m model_api.healthcheck [--url http://127.0.0.1:8000] [--timeout 2] [--config FILE]

Sends the service's bearer token when one is configured (``$TWEETSENT_SERVICE_TOKEN`` or
``service.token_file``), so the check passes with and without a token, and whether or not
``/health`` is among ``service.open_paths``. The probe is :mod:`sentiment.health`, the one the job
and ``python -m stream.health`` use; it imports no model code, so it runs in a second.
"""

from __future__ import annotations

from sentiment.health import health_command
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    return health_command(argv, prog="python -m model_api.healthcheck")


if __name__ == "__main__":
    raise SystemExit(main())
