"""The service as an ASGI application: the two prediction routes on an event loop, the rest in Flask.

Usage: granian --interface asgi --factory model_api.asgi:create (what ``python -m model_api`` runs)

Under WSGI each request holds a thread while its texts are scored. With hundreds of requests in
flight, waking those threads under one interpreter lock cost the worker about 0.5 ms of CPU per
request, a quarter of the machine at 1,000 single tweets a second (docs/serving.md, "The request
path"). Here ``POST /predict`` and ``POST /predict/batch`` are coroutines that wait for the model
processes' replies without a thread each. They read requests, check the bearer token and word
failures with the Flask app's own functions (:mod:`model_api.protocol`) and record the same
metrics, so a request gets the same answer on either path. Every other request (``/health``,
``/model``, ``/metrics``, ``/openapi.json``, ``POST /admin/model``, other methods and paths) goes to the Flask app of
:func:`model_api.app.create_app`, which a2wsgi runs on a few threads.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from a2wsgi import WSGIMiddleware
from flask import Flask

from model_api.admin import ADMIN_PATH, admin_swap, allowed_without_token
from model_api.protocol import (
    BEARER_REALM,
    SWITCHING_HEADER,
    UNAUTHORIZED,
    VERSION_HEADER,
    BadRequest,
    Overloaded,
    authorized,
    batch_texts,
    failure,
    is_json,
    json_object,
    single_text,
    too_large,
)
from sentiment.config import Config, service_token

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

ROUTES = {"/predict": single_text, "/predict/batch": batch_texts}
FLASK_THREADS = 8  # threads for the Flask routes (health, metrics...): none of them waits on the model


class ServiceApp:
    """The ASGI application around a Flask app built by :func:`model_api.app.create_app`."""

    def __init__(self, app: Flask) -> None:
        self.flask = WSGIMiddleware(app, workers=FLASK_THREADS)
        config: Config = app.extensions["tweetsent.config"]
        self.service = config.service
        self.predictor = app.extensions["tweetsent.predictor"]
        self.metrics = app.extensions["tweetsent.metrics"]
        self.errors = app.extensions["tweetsent.errors"]
        self.token = service_token(self.service)
        self.open_paths = set(self.service.open_path_list)
        # Model processes (``pending``, reporting their own predictions to ``on_batch``) are waited
        # for on the loop; a predictor in this process is called on threads, enough for its
        # micro-batches to gather.
        # The predictor is a model_api.swap.ModelSlot: each request reads its ``serving`` model once.
        self._predict = app.extensions["tweetsent.predict"]
        self._blocking = ThreadPoolExecutor(self.service.threads)  # threads start only when used
        self.held = 0  # texts admitted and not yet answered (changed on the event loop only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in ROUTES:
            await self._scoring(scope, receive, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == ADMIN_PATH:
            await self._admin(scope, receive, send)
        else:
            await self.flask(scope, receive, send)

    async def _scoring(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        route = scope["path"]
        status, body, extra = await self._answer(route, _headers(scope), receive)
        if status == CLIENT_GONE:  # nobody to answer: its work was dropped
            self.metrics.requests.labels(route, str(status)).inc()
            return
        await self._send_json(route, status, body, extra, send, started)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /admin/model`` (:func:`model_api.admin.admin_swap`), its body read here (a2wsgi
        cannot read a request body under granian), the swap on a thread of its own."""
        started, headers = time.perf_counter(), _headers(scope)
        client = (scope.get("client") or ("", 0))[0]
        if self.token and not authorized(headers.get("authorization", ""), self.token):
            self.errors.report("unauthorized request", f"POST {ADMIN_PATH} without the bearer token")
            status, body, extra = 401, {"error": UNAUTHORIZED}, {"WWW-Authenticate": BEARER_REALM}
        elif not self.token and not allowed_without_token(client):
            status, body, extra = 403, {"error": f"{ADMIN_PATH} without a service token answers only on loopback"}, {}
        else:
            try:
                content_type = headers.get("content-type", "")
                data = await self._body(headers, receive) if is_json(content_type) else b""
                request = json_object(data, content_type)
                workers = self.service.worker_processes
                swap = functools.partial(admin_swap, self.predictor, request, workers, self.errors)
                status, body = await asyncio.get_running_loop().run_in_executor(None, swap)
                extra = {}
            except BadRequest as e:
                answer = failure(e, self.service, ADMIN_PATH)
                status, body, extra = answer.status, {"error": answer.message}, answer.headers
        await self._send_json(ADMIN_PATH, status, body, extra, send, started)

    async def _send_json(self, route: str, status: int, body: dict, extra: dict, send: Send, started: float) -> None:
        # As Flask's jsonify: sorted keys, ASCII, compact, a final newline.
        payload = (json.dumps(body, sort_keys=True, separators=(",", ":")) + "\n").encode()
        response_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
        response_headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        self.metrics.requests.labels(route, str(status)).inc()
        self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    async def _answer(self, route: str, headers: dict[str, str], receive: Receive) -> tuple[int, dict, dict]:
        """(status, JSON body, extra headers) for one scoring request."""
        if self.token and route not in self.open_paths and not authorized(headers.get("authorization", ""), self.token):
            self.errors.report("unauthorized request", f"POST {route} without the bearer token")
            return 401, {"error": UNAUTHORIZED}, {"WWW-Authenticate": BEARER_REALM}
        try:
            content_type = headers.get("content-type", "")
            data = await self._body(headers, receive) if is_json(content_type) else b""
            texts = ROUTES[route](json_object(data, content_type), self.service)
            results = await self._admitted(texts, receive)
        except ClientGone:
            return CLIENT_GONE, {}, {}
        except Exception as e:
            answer = failure(e, self.service, route)
            if answer is None:
                self.errors.report(f"internal error {type(e).__name__}", f"{route}: {e}", logging.ERROR, exc_info=e)
                return 500, {"error": f"internal error: {type(e).__name__}"}, {}
            self.errors.report(answer.kind, answer.detail, answer.level)
            return answer.status, {"error": answer.message}, answer.headers
        version, results = results
        extra = {VERSION_HEADER: version}
        if self.predictor.switching:
            extra[SWITCHING_HEADER] = "1"
        if route == "/predict":
            return 200, {**results[0].to_dict(), "model_version": version}, extra
        return 200, {"results": [r.to_dict() for r in results], "model_version": version}, extra

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, up to ``service.max_body_bytes`` (with a length or chunked).

        Raises:
            BadRequest: 413 when it is longer.
        """
        limit = self.service.max_body_bytes
        try:
            length = int(headers["content-length"])
        except (KeyError, ValueError):
            length = None
        if length is not None and length > limit:
            raise too_large(limit)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    async def _admitted(self, texts: list[str], receive: Receive) -> list:
        """:meth:`_scores`, when the worker holds room for ``texts`` (``service.max_queued_texts``),
        and while the client waits for them.

        Raises:
            Overloaded: no room: the client is told to come back (503, ``Retry-After``).
            ClientGone: the client disconnected; its texts were dropped from the model's queue.
        """
        limit = self.service.max_queued_texts
        if self.held + len(texts) > limit:
            raise Overloaded(
                f"{self.held} texts already waiting in this worker, over service.max_queued_texts = {limit}; "
                "retry after Retry-After seconds"
            )
        self.held += len(texts)
        scoring = asyncio.ensure_future(self._scores(texts))
        gone = asyncio.ensure_future(_disconnected(receive))
        try:
            await asyncio.wait({scoring, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not scoring.done():
                scoring.cancel()  # _scores forgets the parts: the model processes drop what they have not begun
                raise ClientGone
            return scoring.result()
        finally:
            gone.cancel()
            self.held -= len(texts)

    async def _scores(self, texts: list[str]) -> tuple[str, list]:
        """(version, predictions) of ``texts``, waiting without a thread for the model processes.

        Raises:
            TimeoutError: none within ``service.timeout_seconds`` (the model processes forget them).
            ModelUnavailable, RemotePredictionError: as the predictor's ``predict``.
        """
        current = self.predictor.serving  # the model that scores these texts, even if a swap follows
        if not current.waits:
            return await asyncio.get_running_loop().run_in_executor(self._blocking, self._predict, texts)
        parts = current.predictor.pending(texts)
        waiting = asyncio.gather(*(asyncio.wrap_future(part.future) for part in parts), return_exceptions=True)
        try:
            answers = await asyncio.wait_for(waiting, self.service.timeout_seconds)
        except (TimeoutError, asyncio.CancelledError):  # too late, or the client is gone
            for part in parts:
                part.forget()
            raise
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        return current.version, [prediction for answer in answers for prediction in answer]


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        headers.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return headers


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


CLIENT_GONE = 499  # as nginx counts a request whose client closed the connection: no answer is sent


async def _disconnected(receive: Receive) -> None:
    """Return once the client has disconnected (the body is read by then: only that message is left)."""
    while (await receive())["type"] != "http.disconnect":
        await asyncio.sleep(0.05)  # a server that does not wait for the disconnect must not spin the loop


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def create(config: Config | None = None) -> ServiceApp:
    """One worker's ASGI application: the model loaded and warmed up (:func:`model_api.wsgi.create`)."""
    from model_api.wsgi import create as create_flask

    return ServiceApp(create_flask(config))
