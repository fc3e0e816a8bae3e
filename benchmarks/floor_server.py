"""A server that answers every request at once with a fixed prediction: the load test's floor.

``python -m benchmarks.load_test --scenario floor`` runs the same Locust users against it (served
by granian, ASGI, one worker), so the latency it measures is what Locust, loopback and an HTTP
server add on this machine with no model and no Flask: the part of the service's figures the
service cannot remove.
"""

from __future__ import annotations

import json
import os

BODY = json.dumps({"sentiment": "Positive", "p_positive": 0.9, "confidence": 0.9, "worker": os.getpid()}).encode()
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    more = True
    while more:  # read the request body, as a real server would
        more = (await receive()).get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
