"""Serve the sentiment model over HTTP, under granian.

Usage: python -m model_api [--host H] [--port P] [--model DIR_OR_NAME] [--workers N] [--config FILE]

Each worker process loads the model once (in its model processes) and runs the ASGI front of
``model_api.front.asgi.create``: the scoring and admin routes on an event loop, the reading
routes in a Flask app. Granian reads and writes HTTP in Rust and restarts a worker that dies.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import tempfile

from model_api.model.locations import check_model, model_location
from model_api.runner.model_share import SHARE_ENV
from sentiment.config import ENV_PREFIX, Config, ConfigError, load_config
from sentiment.logs import setup_logging


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_api", description="Serve the sentiment model over HTTP.")
    p.add_argument("--host", help="bind address (default from conf: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from conf)")
    p.add_argument("--model", help="model directory or Hugging Face hub name (default: bundled model)")
    p.add_argument("--workers", type=int, help="worker processes; each loads the model once")
    p.add_argument("--config", help="TOML configuration file (default conf/pipeline.toml)")
    return p


def _default_stop_signals() -> None:
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)


def serve_granian(config: Config, config_file: str | None, overrides: dict[str, object]) -> None:
    from granian import Granian
    from granian.constants import Interfaces

    service = config.service
    # Granian starts fresh worker processes that load the configuration again: hand them the file
    # and this command's overrides through the environment.
    if config_file:
        os.environ[ENV_PREFIX + "CONFIG"] = config_file
    for key, value in overrides.items():
        os.environ[f"{ENV_PREFIX}SERVICE__{key.upper()}"] = str(value)
    # Granian forks its workers with the main process's signal handlers, which only set a flag in
    # the worker's copy: a SIGTERM that came while a worker imported and loaded the model was lost,
    # and the worker served on until killed workers_kill_timeout later. Until granian sets a
    # worker's own handlers (once its application is loaded), a signal ends it: it has no work yet.
    os.register_at_fork(after_in_child=_default_stop_signals)
    Granian(
        "model_api.front.asgi:create",
        factory=True,
        address=service.host,
        port=service.port,
        interface=Interfaces.ASGI,
        workers=service.worker_processes,
        backlog=2048,
        websockets=False,
        log_access=False,
        workers_kill_timeout=10,
        # A worker that dies (killed, out of memory) is started again while the others serve; one
        # that dies again within a few seconds of its restart stops the service (a crash loop).
        respawn_failed_workers=True,
    ).serve()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
        overrides = {
            k: v
            for k, v in {
                "host": args.host,
                "port": args.port,
                "model": args.model,
                "workers": args.workers,
            }.items()
            if v is not None
        }
        config = dataclasses.replace(config, service=dataclasses.replace(config.service, **overrides))
        check_model(config)
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"error: the model {model_location(config)} cannot be served: {e}", file=sys.stderr)
        return 2
    if config.service.worker_processes > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds up the workers through files in this folder.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tweetsent-metrics-")
    if config.service.worker_processes > 1:
        # This service's workers follow a model swap (POST /admin/model) through files in this folder:
        # a new one for each service, so that replicas started from one shell swap one at a time.
        os.environ[SHARE_ENV] = tempfile.mkdtemp(prefix="tweetsent-model-")
    serve_granian(config, args.config, overrides)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
