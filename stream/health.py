"""Whether the model service answers ``GET /health``, as an exit status for shell scripts.

Usage: python -m stream.health URL [--timeout SECONDS] [--config FILE]

Exits 0 when it answers 200, else 1 (and names the problem on stderr), 2 on a configuration error.
Sends the service's bearer token (``$TWEETSENT_SERVICE_TOKEN`` or ``service.token_file``), so that
it works with ``service.open_paths = ""`` too. The same check as the containers'
``python -m model_api.healthcheck`` (both are :func:`sentiment.health.health_command`), with the URL
given first, as ``run_pipeline.sh`` calls it.
"""

from __future__ import annotations

from sentiment.health import health_command
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    setup_logging()
    return health_command(argv, prog="python -m stream.health", url_first=True)


if __name__ == "__main__":
    raise SystemExit(main())
