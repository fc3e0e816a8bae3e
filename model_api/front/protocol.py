"""What a scoring request must be, and how the service answers one that fails.

The front (:mod:`model_api.front.asgi`) reads requests with these functions and turns failures into
answers with :func:`failure`; the limits a client packs its requests below (:func:`limits`) and the
bearer-token check live here too. Nothing here knows HTTP servers.
"""

from __future__ import annotations

import hmac
import itertools
import json
import logging
import re
from dataclasses import dataclass, field

from model_api.runner.interface import ModelUnavailable
from sentiment.config import ServiceConfig

# What JSON can carry but no tokenizer takes: halves of a surrogate pair on their own.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REPLACEMENT = "\ufffd"

# The routes take an object holding a list of strings; deeper JSON is refused before it is parsed,
# whatever the interpreter's recursion limit (which other libraries in the process may raise).
MAX_JSON_DEPTH = 32
# A string, or an unterminated one up to the end: possessive, so that it never backtracks, and a
# string that never closes is consumed once instead of retried from each quote inside it. One pass.
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}

UNAUTHORIZED = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
VERSION_HEADER = "X-Model-Version"  # every scoring answer names the model that scored it
# On scoring answers while the replica rolls out a model: a client with other replicas sends them its next requests.
SWITCHING_HEADER = "X-Model-Switching"

BEARER_REALM = 'Bearer realm="tweet-sentiment"'


class BadRequest(Exception):
    """A request the client must fix; becomes a JSON error with the given status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Overloaded(Exception):
    """The worker holds as many texts as ``service.max_queued_texts``: a 503 with ``Retry-After``."""


def clean_text(value: str, max_chars: int) -> str:
    """``value`` cut to ``max_chars`` characters, each lone surrogate replaced by U+FFFD."""
    return _LONE_SURROGATE.sub(REPLACEMENT, value[:max_chars])


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of a JSON text nest (brackets inside strings do not count)."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return 0  # cannot be deeper than the limit: skip the scan
    # Linear time, whatever the body: the strings go in one pass, then the running sum of the
    # brackets left (each pass in C but for the sum, which holds only brackets).
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(0, max(itertools.accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0))


def is_json(content_type: str) -> bool:
    """Whether a Content-Type names JSON: ``application/json`` or ``application/*+json`` (as Werkzeug)."""
    mimetype = content_type.split(";", 1)[0].strip().lower()
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def limits(service: ServiceConfig) -> dict[str, int]:
    """What the service takes, as ``GET /model`` and the OpenAPI document state it to clients."""
    return {
        "max_body_bytes": service.max_body_bytes,
        "max_batch": service.max_batch,
        "max_text_chars": service.max_text_chars,
        "max_queued_texts": service.max_queued_texts,
        "timeout_seconds": service.timeout_seconds,
    }


def too_large(limit: int) -> BadRequest:
    return BadRequest(f"request body is larger than the limit of {limit} bytes", 413)


def json_object(data: bytes, content_type: str) -> dict:
    """The JSON object a request body holds.

    Raises:
        BadRequest: 415 when the Content-Type is not JSON; 400 when the body is not UTF-8, not
            JSON, nested too deeply or not an object.
    """
    if not is_json(content_type):
        raise BadRequest("expected a JSON body with Content-Type: application/json", 415)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"request body is not valid UTF-8 (byte {e.start}); send JSON encoded in UTF-8") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body is not valid JSON: nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    try:
        body = json.loads(text)
    except RecursionError:
        raise BadRequest("request body is not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as e:
        raise BadRequest(f"request body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from None
    except ValueError as e:  # e.g. an integer of too many digits
        raise BadRequest(f"request body is not valid JSON: {str(e)[:200]}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"expected a JSON object, got {type(body).__name__}")
    return body


def _text(value: object, where: str, max_chars: int) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string, got {type(value).__name__}")
    return clean_text(value, max_chars)


def single_text(body: dict, service: ServiceConfig) -> list[str]:
    """The one text of a ``POST /predict`` body ``{"text": ...}``, as a list."""
    if "text" not in body:
        raise BadRequest('missing field "text"')
    return [_text(body["text"], '"text"', service.max_text_chars)]


def batch_texts(body: dict, service: ServiceConfig) -> list[str]:
    """The texts of a ``POST /predict/batch`` body ``{"texts": [...]}``."""
    if "texts" not in body:
        raise BadRequest('missing field "texts"')
    texts = body["texts"]
    if not isinstance(texts, list):
        raise BadRequest(f'"texts" must be a list of strings, got {type(texts).__name__}')
    if not texts:
        raise BadRequest('"texts" is empty; send at least one text')
    if len(texts) > service.max_batch:
        # A batch over the limit breaks the document's maxItems: a 400 as any body that breaks its
        # schema (413 is for a body over service.max_body_bytes).
        raise BadRequest(f'"texts" holds {len(texts)} texts; the limit is {service.max_batch} per request')
    return [_text(t, f'"texts"[{i}]', service.max_text_chars) for i, t in enumerate(texts)]


def authorized(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries the bearer ``token``."""
    scheme, _, given = header.partition(" ")
    # Constant time: how much of a guess matched must not show in the answer's timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode())


@dataclass(frozen=True)
class Failure:
    """How the service answers a request that failed: status, JSON ``{"error": message}``, headers,
    and what the error log records (a kind, counted per interval, and the detail)."""

    status: int
    message: str
    kind: str
    detail: str
    level: int = logging.WARNING
    headers: dict[str, str] = field(default_factory=dict)


def failure(e: Exception, service: ServiceConfig, route: str) -> Failure | None:
    """The answer to a scoring request on ``route`` that raised ``e``; None for an exception the
    caller must treat as a fault of the service (a 500)."""
    if isinstance(e, BadRequest):
        return Failure(e.status, e.message, f"client error {e.status}", f"{route}: {e.message}", logging.INFO)
    if isinstance(e, ModelUnavailable):
        headers = {"Retry-After": retry_after(e.retry_after)}
        return Failure(503, f"model unavailable: {e}", "model unavailable", str(e), headers=headers)
    if isinstance(e, Overloaded):
        headers = {"Retry-After": retry_after(service.retry_after_seconds)}
        return Failure(503, f"model overloaded: {e}", "overloaded", str(e), headers=headers)
    if isinstance(e, TimeoutError):
        message = f"no prediction within service.timeout_seconds = {service.timeout_seconds} s"
        return Failure(
            503,
            f"model overloaded: {message}",
            "prediction timeout",
            message,
            headers={"Retry-After": retry_after(service.retry_after_seconds)},
        )
    return None


def retry_after(seconds: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least 1."""
    return str(max(1, round(seconds)))
