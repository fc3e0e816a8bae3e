"""A stand-in for the X API v2 on 127.0.0.1, serving the recorded responses of tests/fixtures/twitter,
for tests that run the live relay as a real process (``TWITTER_API_URL`` points it here).

The filtered stream sends its recorded tweets, then a keep-alive every ``keep_alive`` seconds and
never ends; recent search answers with its first recorded page, or with 429 and a reset 15 minutes
away when ``rate_limited``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "twitter"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args) -> None:
        pass

    def _json(self, status: int, name: str, headers: dict[str, str] | None = None) -> None:
        body = (FIXTURES / name).read_bytes()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's names)
        self.server.requests.append(self.path)
        if self.path.startswith("/2/tweets/search/stream/rules"):
            return self._json(200, "rules_existing.json")
        if self.path.startswith("/2/tweets/search/stream"):
            return self._stream()
        if self.path.startswith("/2/tweets/search/recent"):
            if self.server.rate_limited:
                reset = str(int(time.time() + 900))
                return self._json(429, "error_429.json", {"x-rate-limit-reset": reset, "x-rate-limit-remaining": "0"})
            return self._json(200, "search_page1.json")
        self.send_error(404)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.server.requests.append(self.path)
        self._json(200, "rules_deleted.json" if "delete" in body else "rules_added.json")

    def _stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        try:
            for line in (FIXTURES / "stream.jsonl").read_bytes().splitlines():
                if line.strip():
                    self.wfile.write(line + b"\r\n")
            self.wfile.flush()
            while not self.server.closing.wait(self.server.keep_alive):
                self.wfile.write(b"\r\n")
                self.wfile.flush()
        except OSError:
            pass  # the relay went away


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, rate_limited: bool, keep_alive: float) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.rate_limited = rate_limited
        self.keep_alive = keep_alive
        self.requests: list[str] = []
        self.closing = threading.Event()


@contextmanager
def fake_x_api(rate_limited: bool = False, keep_alive: float = 20.0) -> Iterator[_Server]:
    """Serve the stand-in on a free loopback port; ``server.url`` is its base URL."""
    server = _Server(rate_limited, keep_alive)
    server.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.closing.set()
        server.shutdown()
        server.server_close()
