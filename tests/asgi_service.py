"""The service's ASGI application around the test model, served by granian in its own process: the
real HTTP front (limits, checks, admission) on real sockets, without the model's weights.

Usage: granian --interface asgi --factory tests.asgi_service:create (settings from TWEETSENT_*, as the
service; TWEETSENT_TEST_PREDICT_SECONDS makes each prediction take that long)

:func:`asgi_service` starts it on a free loopback port and stops it (by its pid) afterwards.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from harness.processes import free_port, healthy, start_module, stop_group, stop_process, wait_until
from model_api.front.asgi import ServiceApp
from model_api.front.routes import Service
from sentiment.config import load_config
from tests.conftest import FakePredictor

DELAY_ENV = "TWEETSENT_TEST_PREDICT_SECONDS"


class SlowPredictor(FakePredictor):
    """The test model, taking ``seconds`` per prediction (a busy model: requests queue up)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def predict(self, texts: list[str]) -> list:
        time.sleep(self.seconds)
        return super().predict(texts)


def create() -> ServiceApp:
    """One granian worker's application."""
    config = load_config()
    return ServiceApp(Service(config, SlowPredictor(float(os.environ.get(DELAY_ENV, "0")))))


@contextlib.contextmanager
def asgi_service(log: Path, env: dict[str, str] | None = None, timeout: float = 60.0) -> Iterator[str]:
    """Serve :func:`create` with one granian worker on 127.0.0.1; yield its URL once ``/health`` answers."""
    port = free_port()
    command = ["granian", "--interface", "asgi", "--factory", "--workers", "1"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--no-ws", "tests.asgi_service:create"]
    process = start_module(*command, log=log, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(process, url, log), timeout, f"the service to answer /health: {log}")
        yield url
    finally:
        stop_process(process)
        # A worker busy in one request can outlive its server: end the group this test started.
        stop_group(process)


def _answers(process: subprocess.Popen, url: str, log: Path) -> bool:
    if process.poll() is not None:
        raise RuntimeError(f"the service exited with {process.returncode}: {log.read_text()[-2000:]}")
    return healthy(url)
