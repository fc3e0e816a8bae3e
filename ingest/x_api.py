"""Talking to the X (Twitter) API: the bearer token and its redaction, errors explained, backoff,
and the base URL.

The bearer token comes from ``TWITTER_BEARER_TOKEN`` or a file; it never reaches a log line,
an error message or the output (:class:`RedactToken` scrubs it from every log record).
``TWITTER_API_URL`` points the relay at another host than the X API (a proxy, or a recorded
stand-in for tests).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import requests
import tweepy

TOKEN_ENV = "TWITTER_BEARER_TOKEN"
API_URL_ENV = "TWITTER_API_URL"
API_URL = "https://api.twitter.com"


class TwitterSetupError(RuntimeError):
    """A problem the user must fix (token, access tier); the message says what to do."""


def load_bearer_token(token_file: str | Path | None = None, env: dict[str, str] | None = None) -> str:
    """Read the bearer token from a file, else from ``$TWITTER_BEARER_TOKEN``.

    Raises:
        TwitterSetupError: when neither holds a token.
    """
    env = os.environ if env is None else env
    if token_file:
        path = Path(token_file)
        if not path.is_file():
            raise TwitterSetupError(f"--token-file {path} does not exist")
        token = path.read_text().strip()
        if not token:
            raise TwitterSetupError(f"--token-file {path} is empty")
        return token
    token = env.get(TOKEN_ENV, "").strip()
    if not token:
        raise TwitterSetupError(
            f"no bearer token: set {TOKEN_ENV} (export {TOKEN_ENV}=...) or pass --token-file FILE; "
            "the token is never taken from the command line"
        )
    return token


class RedactToken(logging.Filter):
    """Replace the token by ``***`` in every log record that passes through a handler."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        if self.token:
            message = record.getMessage()
            if self.token in message:
                record.msg = message.replace(self.token, "***")
                record.args = None
        return True


def install_redaction(token: str) -> None:
    """Scrub the token from every handler of the root logger (and from later ones' output)."""
    redact = RedactToken(token)
    root = logging.getLogger()
    for handler in root.handlers:
        handler.addFilter(redact)


def explain(error: tweepy.HTTPException) -> str:
    """A message for an API error that says what to do; never includes the token."""
    status = getattr(error.response, "status_code", None) or getattr(error.response, "status", None)
    detail = "; ".join(error.api_messages) if error.api_messages else ""
    if status == 401:
        return f"the API rejected the bearer token (401 Unauthorized): check {TOKEN_ENV}"
    if status == 403:
        text = str(getattr(error.response, "text", "")) + detail
        if "client-not-enrolled" in text or "filtered stream" in text.lower() or "not enrolled" in text:
            return (
                "this account's access tier has no filtered stream (403 client-not-enrolled): "
                "use --mode search, which polls recent search instead"
            )
        return f"the API refused access (403 Forbidden): {detail or 'check the app permissions'}; try --mode search"
    if status == 429:
        return "rate limited by the API (429 Too Many Requests)"
    return f"the API answered HTTP {status}: {detail or error}"


class Backoff:
    """Exponential backoff with full jitter: ``base * 2**n``, capped, times a random factor in [0.5, 1]."""

    def __init__(self, base: float = 1.0, cap: float = 60.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt) * (0.5 + self.rng.random() / 2)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class _Redirect(requests.adapters.HTTPAdapter):
    """Sends the requests tweepy makes to ``https://api.twitter.com`` to another base URL."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request, **kwargs):
        request.url = self.base + request.url[len(API_URL) :]
        return super().send(request, **kwargs)


def point_at_api(session: requests.Session, env: dict[str, str] | None = None) -> None:
    """Send a tweepy session's API calls to ``$TWITTER_API_URL`` when it is set."""
    base = (os.environ if env is None else env).get(API_URL_ENV, "").strip()
    if base and base.rstrip("/") != API_URL:
        session.mount(API_URL, _Redirect(base))
