"""Serve the sentiment model over HTTP under gunicorn.

Usage: python -m model_api [--host H] [--port P] [--model DIR_OR_NAME] [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
import tempfile

from sentiment.config import ConfigError, load_config


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m model_api", description="Serve the sentiment model over HTTP.")
    p.add_argument("--host", help="bind address (default from conf: 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default from conf)")
    p.add_argument("--model", help="model directory or Hugging Face hub name (default: bundled model)")
    p.add_argument("--workers", type=int, help="worker processes; each loads the model once")
    p.add_argument("--config", help="TOML configuration file (default conf/pipeline.toml)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # torchao notes at import that its optional CUDA kernels do not load; nothing to act on here.
    logging.getLogger("torchao").setLevel(logging.ERROR)
    logging.getLogger("torch.utils._pytree").setLevel(logging.ERROR)
    try:
        config = load_config(args.config)
        overrides = {
            k: v
            for k, v in {"host": args.host, "port": args.port, "model": args.model, "workers": args.workers}.items()
            if v is not None
        }
        config = dataclasses.replace(config, service=dataclasses.replace(config.service, **overrides))
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    from gunicorn.app.base import BaseApplication

    service = config.service
    # torch threads: workers x threads <= cores, unless configured
    threads = service.torch_threads or max(1, (os.cpu_count() or 1) // service.workers)
    if service.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # /metrics adds up the workers through files in this folder.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="tweetsent-metrics-")

    class Server(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", f"{service.host}:{service.port}")
            self.cfg.set("workers", service.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", service.threads)
            self.cfg.set("worker_connections", 2000)
            self.cfg.set("backlog", 2048)
            self.cfg.set("keepalive", 30)
            self.cfg.set("timeout", service.timeout_seconds)
            self.cfg.set("graceful_timeout", 10)
            self.cfg.set("accesslog", None)

        def load(self):
            # Runs in each worker: one model per worker, with the cores shared between workers.
            import torch

            from model_api.app import create_app

            torch.set_num_threads(threads)
            # The engine thread gives up the GIL inside every kernel and must win it back from the
            # request threads after each one; a short switch interval keeps that wait small.
            sys.setswitchinterval(0.0005)
            app = create_app(config)
            # Warm-up (and, for a compiled engine, compiling): paid before the first request.
            app.extensions["tweetsent.predictor"].warm_up()
            return app

    Server().run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
