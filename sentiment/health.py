"""The model service's health as its clients see it: one ``GET /health`` probe, with the bearer token.

Usage::

    problem = service_health("http://127.0.0.1:8000", timeout=2, token=token)  # None when healthy
    exit_status = health_command(argv, prog="python -m stream.health")  # 0, 1 or 2, for a command line

The job's wait for the service (``stream.scoring``), ``python -m stream.health`` (run_pipeline.sh)
and ``python -m model_api.healthcheck`` (the containers' health checks) all ask through here, so a
healthy service means the same thing to each of them. Imports no model code and no Spark.
"""

from __future__ import annotations

import argparse
import sys

from sentiment.config import ConfigError, load_config, service_token


def auth_headers(token: str) -> dict[str, str]:
    """The ``Authorization`` header of the service's bearer token; none without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def service_health(url: str, timeout: float = 5.0, token: str = "") -> str | None:
    """None when ``url``/health answers 200, else what went wrong (``HTTP 503``, ``ConnectionError``)."""
    import requests  # imported when asked: the configuration's readers need not load it

    try:
        r = requests.get(url.rstrip("/") + "/health", timeout=timeout, headers=auth_headers(token))
    except requests.RequestException as e:
        return type(e).__name__
    return None if r.ok else f"HTTP {r.status_code}"


def check_command(url: str | None, timeout: float, config_file: str | None = None) -> int:
    """A health check's exit status: 0 when healthy, 1 when not (the problem on stderr), 2 on a bad configuration.

    Args:
        url: the service's base URL; None for ``http://127.0.0.1:<service.port>`` of the configuration.
        timeout: seconds to wait for the answer.
        config_file: a TOML configuration file (for ``service.port`` and ``service.token_file``).
    """
    try:
        config = load_config(config_file)
        token = service_token(config.service)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    url = url or f"http://127.0.0.1:{config.service.port}"
    problem = service_health(url, timeout, token)
    if problem is not None:
        print(f"{url.rstrip('/')}/health: {problem}", file=sys.stderr)
        return 1
    return 0


def health_command(argv: list[str] | None, prog: str, url_first: bool = False) -> int:
    """A health check's command line (``--url`` or, with ``url_first``, the URL given first, as
    ``run_pipeline.sh`` calls it; ``--timeout``; ``--config``) run: :func:`check_command`."""
    p = argparse.ArgumentParser(prog=prog, description="Exit 0 when the model service answers GET /health with 200.")
    if url_first:
        p.add_argument("url", help="the service's base URL, e.g. http://127.0.0.1:8000")
    else:
        p.add_argument("--url", help="the service's base URL (default: http://127.0.0.1:<service.port>)")
    p.add_argument("--timeout", type=float, default=2.0, help="seconds to wait for the answer (default: 2)")
    p.add_argument("--config", help="TOML configuration file (for service.port and service.token_file)")
    args = p.parse_args(argv)
    return check_command(args.url, args.timeout, args.config)
