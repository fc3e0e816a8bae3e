"""The service's front: one ASGI application per worker, run by granian (``python -m model_api``).

Usage: granian --interface asgi --factory model_api.front.asgi:create (what ``python -m model_api`` runs)

A ``POST`` to a scoring route (``/predict``, ``/predict/batch``) or to ``/admin/model`` is answered
here, and only here, in one sequence: who may ask, the body read up to ``service.max_body_bytes``,
the texts, admission against the worker's queue (503 beyond ``service.max_queued_texts``), the wait
for the model processes' replies on the event loop without a thread per request (the texts are
dropped from the model's queue if the client hangs up), and the answer. Every step's decision and
wording is a call to the worker's :class:`~model_api.front.routes.Service`. Every other request
(``/health``, ``/model``, ``/metrics``, ``/openapi.json``, other methods and paths) goes to the
Flask app of the same service (:func:`model_api.front.app.create_app`), which a2wsgi runs on a few
threads: none of those routes waits on the model, and Flask answers HEAD, OPTIONS, 404 and 405 the
way clients expect. Any ASGI server can run :func:`create`; granian is the one the project ships
and measures (docs/serving.md, "The request path").
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

from a2wsgi import WSGIMiddleware

from model_api.front.admin import ADMIN_PATH
from model_api.front.app import create_app
from model_api.front.protocol import Overloaded, is_json, json_object, too_large
from model_api.front.routes import SCORING, Answer, Service
from sentiment.config import Config

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

FLASK_THREADS = 8  # threads for the Flask routes (health, metrics...): none of them waits on the model


class ServiceApp:
    """The ASGI application of one worker's :class:`~model_api.front.routes.Service`."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.settings = service.settings
        self.flask = WSGIMiddleware(create_app(service), workers=FLASK_THREADS)
        self.held = 0  # texts admitted and not yet answered (changed on the event loop only)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in (*SCORING, ADMIN_PATH):
            await self._post(scope, receive, send)
        else:
            await self.flask(scope, receive, send)

    async def _post(self, scope: Scope, receive: Receive, send: Send) -> None:
        started, route, headers = time.perf_counter(), scope["path"], _headers(scope)
        client = (scope.get("client") or ("", 0))[0]
        answer = self.service.refusal("POST", route, headers.get("authorization", ""), client)
        if answer is None:
            answer = await self._answer(route, headers, receive)
        if answer.status == CLIENT_GONE:  # nobody to answer: its work was dropped
            self.service.record(route, answer.status, None)
            return
        payload = answer.payload()
        response_headers = [(b"content-type", answer.content_type.encode()), (b"content-length", b"%d" % len(payload))]
        response_headers += [(k.lower().encode(), v.encode()) for k, v in answer.headers.items()]
        await send({"type": "http.response.start", "status": answer.status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})
        self.service.record(route, answer.status, started)

    async def _answer(self, route: str, headers: dict[str, str], receive: Receive) -> Answer:
        """The answer to one scoring or admin request that may be served."""
        try:
            content_type = headers.get("content-type", "")
            data = await self._body(headers, receive) if is_json(content_type) else b""
            if route == ADMIN_PATH:
                swap = functools.partial(self.service.admin, json_object(data, content_type))
                return await asyncio.get_running_loop().run_in_executor(None, swap)
            version, results = await self._admitted(self.service.texts(route, data, content_type), receive)
        except ClientGone:
            return Answer(CLIENT_GONE, {})
        except Exception as e:
            return self.service.failed(route, e)
        return self.service.scored(route, version, results)

    async def _body(self, headers: dict[str, str], receive: Receive) -> bytes:
        """The request body, up to ``service.max_body_bytes`` (with a length or chunked).

        Raises:
            BadRequest: 413 when it is longer.
        """
        limit = self.settings.max_body_bytes
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
        limit = self.settings.max_queued_texts
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
        """(version, predictions) of ``texts``, waiting on the loop, without a thread, for the model
        (its processes, or the threads that run a model in this worker: :mod:`model_api.runner.interface`).

        Raises:
            TimeoutError: none within ``service.timeout_seconds`` (the model forgets them).
            ModelUnavailable, RemotePredictionError: as the model's answer raises them.
        """
        current = self.service.slot.serving  # the model that scores these texts, even if a swap follows
        parts = current.predictor.pending(texts)
        waiting = asyncio.gather(*(asyncio.wrap_future(part.future) for part in parts), return_exceptions=True)
        try:
            answers = await asyncio.wait_for(waiting, self.settings.timeout_seconds)
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
    """One worker's ASGI application: the model loaded and warmed up (:func:`model_api.front.worker.create_service`)."""
    from model_api.front.worker import create_service

    return ServiceApp(create_service(config))
