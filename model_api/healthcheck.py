"""A container's health check of the model service: exit 0 when ``GET /health`` answers 200.

Usage: python -m model_api.healthcheck [--url http://127.0.0.1:8000] [--timeout 2] [--config FILE]

Sends the service's bearer token when one is configured (``$TWEETSENT_SERVICE_TOKEN`` or
``service.token_file``), so the check passes with and without a token, and whether or not
``/health`` is among ``service.open_paths``. Imports no model code: it runs in a second.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request

from sentiment.config import ConfigError, load_config, service_token
from sentiment.logs import setup_logging


def check(url: str, token: str, timeout: float) -> str | None:
    """None when ``url``/health answers 200, else what went wrong."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(url.rstrip("/") + "/health", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return None if response.status == 200 else f"status {response.status}"
    except urllib.error.HTTPError as e:
        return f"status {e.code}"
    except (urllib.error.URLError, OSError) as e:
        return str(getattr(e, "reason", e))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m model_api.healthcheck", description=__doc__.splitlines()[0])
    p.add_argument("--url", help="the service's base URL (default: http://127.0.0.1:<service.port>)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    p.add_argument("--config", help="TOML configuration file")
    args = p.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
        token = service_token(config.service)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    url = args.url or f"http://127.0.0.1:{config.service.port}"
    problem = check(url, token, args.timeout)
    if problem is not None:
        print(f"{url}/health: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
