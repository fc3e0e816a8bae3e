"""A server that answers every request at once with a fixed prediction: the load test's floor.

``python -m benchmarks.load_test --scenario floor`` runs the same Locust users against it (served
by granian, ASGI, one worker), so the latency it measures is what Locust, loopback and an HTTP
server add on this machine with no model and no Flask: the part of the service's figures the
service cannot remove. ``POST /predict/batch`` answers one fixed result per text, so
``python -m benchmarks.pipeline --floor`` measures what the Spark side alone can do.
"""

from __future__ import annotations

import json
import os

BODY = json.dumps({"sentiment": "Positive", "p_positive": 0.9, "confidence": 0.9, "worker": os.getpid()}).encode()


MODEL = json.dumps({"name": "floor", "version": "0"}).encode()


def _answer(path: str, body: bytes) -> bytes:
    if path.endswith("/predict/batch"):  # one fixed result per text: the job's side alone is measured
        texts = json.loads(body or b"{}").get("texts", [])
        return json.dumps({"results": [{"sentiment": "Positive", "p_positive": 0.9, "confidence": 0.9}] * len(texts)})
    if path.endswith("/model"):
        return MODEL
    return BODY


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more, chunks = True, []
    while more:  # read the request body, as a real server would
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = _answer(scope["path"], b"".join(chunks))
    body = body.encode() if isinstance(body, str) else body
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
