"""Hypothesis strategies for the requests a hostile client can send the model service, and the
contract every answer must keep (documented in docs/service.md and at ``GET /openapi.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from hypothesis import strategies as st

METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]
PATHS = ["/predict", "/predict/batch", "/health", "/model", "/metrics", "/openapi.json", "/nope", "/predict/"]
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "application/json; charset=latin-1",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/vnd.api+json",
    "",
]

# Text of every kind: lone surrogates, control characters, astral planes, and the usual.
hostile_chars = st.one_of(
    st.characters(),
    st.characters(categories=["Cs"]),  # lone surrogates: JSON carries them, tokenizers refuse them
    st.characters(categories=["Cc", "Cf", "Zl", "Zp"]),
    st.sampled_from(["\x00", "\ufffd", "\ufeff", "\u202e", "😀", "\U0010ffff"]),
)
hostile_text = st.text(hostile_chars, max_size=300)
json_leaf = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), hostile_text
)
json_value = st.recursive(
    json_leaf,
    lambda inner: st.one_of(st.lists(inner, max_size=5), st.dictionaries(hostile_text, inner, max_size=5)),
    max_leaves=20,
)


@dataclass
class HostileRequest:
    kind: str
    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    chunked: bool = False
    texts: int | None = None  # how many texts a well-formed scoring request holds

    def __repr__(self) -> str:  # hypothesis prints the failing example: keep it short
        return f"HostileRequest({self.kind}, {self.method} {self.path}, {len(self.body)} bytes, {self.headers})"


def crafted_bodies(size: int) -> dict[str, bytes]:
    """Bodies of about ``size`` bytes shaped to make a backtracking string scan quadratic: an
    unterminated string of escaped quotes (or backslashes) behind 33 brackets or object keys."""
    quotes, slashes = b'\\"' * (size // 2), b"\\\\" * (size // 2)
    return {
        "escaped quotes in arrays": b"[" * 33 + b'"' + quotes,
        "escaped quotes in objects": b'{"a":' * 33 + b'"' + quotes,
        "escaped backslashes": b"[" * 33 + b'"' + slashes,
        "bare quotes": b"[" * 33 + b'"' * size,
        "closed strings of escaped quotes": b'{"texts": [' + b"[" * 33 + b'"' + quotes + b'"',
    }


def _dumps(value) -> bytes:
    return json.dumps(value).encode()  # ensure_ascii: lone surrogates travel as \\ud800 escapes


def _scoring_texts(draw, limit: int, batch: int) -> dict:
    texts = draw(st.lists(hostile_text, min_size=1, max_size=min(batch, 20)))
    return {"path": "/predict/batch", "body": _dumps({"texts": texts}), "texts": len(texts)}


def _scoring_text(draw, limit: int, batch: int) -> dict:
    return {"path": "/predict", "body": _dumps({"text": draw(hostile_text)}), "texts": 1}


def _invalid_json(draw, limit: int, batch: int) -> dict:
    body = draw(st.sampled_from([b"{", b'{"text": }', b"{'text': 'a'}", b"NaN]", b'{"text": "a"}}', b""]))
    return {"body": body + draw(st.binary(max_size=50)).replace(b"\xff", b"")}


def _invalid_utf8(draw, limit: int, batch: int) -> dict:
    junk = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xc0\xaf"]))
    return {"body": b'{"text": "' + junk + b'"}'}


def _deep_nesting(draw, limit: int, batch: int) -> dict:
    depth = draw(st.integers(min_value=200, max_value=20_000))
    opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
    return {"body": opener * depth + b"1" + closer * depth}


def _crafted_strings(draw, limit: int, batch: int) -> dict:
    shapes = crafted_bodies(draw(st.integers(min_value=10, max_value=limit)))
    return {"body": shapes[draw(st.sampled_from(sorted(shapes)))][: limit - 1]}


def _method_and_path(draw, limit: int, batch: int) -> dict:
    return {
        "method": draw(st.sampled_from(METHODS)),
        "path": draw(st.sampled_from(PATHS)),
        "body": draw(st.sampled_from([b"", _dumps({"text": "good"}), draw(st.binary(max_size=100))])),
        "content_type": draw(st.sampled_from(CONTENT_TYPES)),
    }


# Each kind of request: what it sets of (method, path, body, content type, texts), drawn.
KINDS = {
    "texts": _scoring_texts,
    "text": _scoring_text,
    "wrong types": lambda draw, limit, batch: {
        "body": _dumps(draw(st.sampled_from([{"text": draw(json_value)}, {"texts": draw(json_value)}])))
    },
    "random json": lambda draw, limit, batch: {"body": _dumps(draw(json_value))},
    "invalid json": _invalid_json,
    "invalid utf-8": _invalid_utf8,
    "deep nesting": _deep_nesting,
    "crafted strings": _crafted_strings,
    "oversized body": lambda draw, limit, batch: {"body": _dumps({"text": "x" * (limit + draw(st.integers(1, 4096)))})},
    "oversized batch": lambda draw, limit, batch: {
        "path": "/predict/batch",
        "body": _dumps({"texts": ["a"] * (batch + draw(st.integers(1, 100)))}),
    },
    "content type": lambda draw, limit, batch: {
        "content_type": draw(st.sampled_from(CONTENT_TYPES[3:])),
        "body": _dumps({"text": "good"}),
    },
    "method and path": _method_and_path,
}


@st.composite
def hostile_requests(draw, max_body_bytes: int, max_batch: int) -> HostileRequest:
    """One request of a kind drawn from :data:`KINDS`: well-formed scoring, wrong types, random
    JSON, invalid JSON, invalid UTF-8, deep nesting, strings crafted to make a scan quadratic,
    oversized bodies (with a length or chunked), oversized batches, wrong content types, odd
    methods and paths, odd headers."""
    kind = draw(st.sampled_from(list(KINDS)))
    request = {"method": "POST", "path": draw(st.sampled_from(["/predict", "/predict/batch"]))}
    request.update(content_type="application/json", texts=None)
    request.update(KINDS[kind](draw, max_body_bytes, max_batch))
    content_type = request["content_type"]
    headers = {"Content-Type": content_type} if content_type else {}
    extra = draw(
        st.sampled_from([{}, {"Accept": "text/html"}, {"X-Forwarded-For": "1.2.3.4"}, {"Authorization": "Bearer nope"}])
    )
    method, path, body = request["method"], request["path"], request["body"]
    return HostileRequest(kind, method, path, body, {**headers, **extra}, draw(st.booleans()), request["texts"])


def check_answer(request: HostileRequest, status: int, headers, body: bytes, paths: dict) -> None:
    """The contract: never a 500; every error is JSON ``{"error": message}``; a status the OpenAPI
    document names for the route (or 404/405/413/415 for what is not a route); a well-formed scoring
    request gets one result per text."""
    assert status != 500, f"500 for {request!r}: {body[:300]!r}"
    if status >= 400 and request.method != "HEAD":
        assert headers.get("Content-Type", "").startswith("application/json"), (request, status, body[:200])
        error = json.loads(body)["error"]
        assert isinstance(error, str) and error, (request, status, body[:200])
    operation = paths.get(request.path, {}).get(request.method.lower())
    if operation is not None and request.method != "HEAD":
        documented = set(operation["responses"]) | {"413"}  # any body can be too large
        assert str(status) in documented, (request, status, body[:200], sorted(documented))
    if request.texts is not None and status == 200:
        answer = json.loads(body)
        results = answer["results"] if request.path == "/predict/batch" else [answer]
        assert len(results) == request.texts
        assert all(r["sentiment"] in ("Negative", "Neutral", "Positive") for r in results)
