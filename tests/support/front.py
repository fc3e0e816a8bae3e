"""The service's front (:class:`model_api.front.asgi.ServiceApp`) in tests: a client that calls it
in-process as a server would, and a real server on a loopback port.

:class:`FrontClient` speaks the werkzeug test client's language (``get``, ``post(json=...)``,
``open``; answers with ``status_code``, ``get_json()``, ``headers``, ``text``) so that a test reads
as one against any web app, while every request goes through the ASGI front the service runs.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from werkzeug.wrappers import Response as _Response

from model_api.front.asgi import ServiceApp
from model_api.front.routes import Service
from sentiment.config import Config


class Response(_Response):
    """An answer as the werkzeug test client gives it."""

    @property
    def text(self) -> str:
        return self.get_data(as_text=True)


def front(config: Config | None = None, predictor=None) -> ServiceApp:
    """The front of a service of ``predictor`` (a predictor, or a :class:`~model_api.runner.swap.ModelSlot`)."""
    return ServiceApp(Service(config or Config(), predictor))


class FrontClient:
    """Requests to an ASGI app, answered on an event loop of the client's own thread (safe to call
    from several threads at once, as concurrent clients)."""

    def __init__(self, app: ServiceApp) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True, name="front-client").start()

    @property
    def service(self) -> Service:
        return self.app.service

    def get(self, path: str, **kwargs) -> Response:
        return self.open(path, method="GET", **kwargs)

    def post(self, path: str, **kwargs) -> Response:
        return self.open(path, method="POST", **kwargs)

    def open(
        self,
        path: str,
        method: str = "GET",
        json=None,
        data: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        content_type: str | None = None,
        chunked: bool = False,
        client: str = "127.0.0.1",
        environ_base: dict | None = None,
    ) -> Response:
        """One request; ``chunked`` sends the body in two pieces without a length, as a chunked
        upload arrives; ``client`` (or ``environ_base["REMOTE_ADDR"]``) is the peer's address."""
        headers = dict(headers or {})
        if json is not None:
            data = jsonlib.dumps(json)
            content_type = content_type or "application/json"
        body = data.encode() if isinstance(data, str) else (data or b"")
        if content_type is not None:
            headers["Content-Type"] = content_type
        if chunked:
            headers["Transfer-Encoding"] = "chunked"
            pieces = [body[: len(body) // 2], body[len(body) // 2 :]]
        else:
            headers.setdefault("Content-Length", str(len(body)))
            pieces = [body]
        client = (environ_base or {}).get("REMOTE_ADDR", client)
        url = urlsplit(path)
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method.upper(),
            "scheme": "http",
            "path": url.path,
            "raw_path": url.path.encode(),
            "query_string": url.query.encode(),
            "root_path": "",
            "headers": [(k.lower().encode("latin-1"), str(v).encode("latin-1")) for k, v in headers.items()],
            "server": ("127.0.0.1", 80),
            "client": (client, 50000),
        }
        status, answer_headers, payload = asyncio.run_coroutine_threadsafe(self._call(scope, pieces), self.loop).result(
            timeout=300
        )
        return Response(payload, status=status, headers=answer_headers)

    async def _call(self, scope: dict, pieces: list[bytes]) -> tuple[int, list[tuple[str, str]], bytes]:
        answered = asyncio.Event()
        start: dict = {}
        body: list[bytes] = []

        async def receive() -> dict:
            if pieces:
                return {"type": "http.request", "body": pieces.pop(0), "more_body": bool(pieces)}
            await answered.wait()  # a client that sent everything waits for its answer
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                body.append(message.get("body", b""))
                if not message.get("more_body"):
                    answered.set()

        await self.app(scope, receive, send)
        answered.set()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", [])]
        return start.get("status", 0), headers, b"".join(body)


def serve_front(app: ServiceApp) -> Iterator[str]:
    """Serve the ASGI ``app`` on 127.0.0.1 and a free port (uvicorn, in a thread); yield its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
