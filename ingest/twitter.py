"""Live tweets from the X (Twitter) API v2, relayed in the same JSON-line format as the replay.

Two modes:

* ``stream`` (default): tweepy's :class:`~tweepy.StreamingClient` on the filtered stream. On start
  the stream's rules are made to match the tracked keywords: missing rules are added, stale rules
  of this tool (tagged ``tweet-sentiment:<keyword>``) are deleted, and rules it did not create are
  left alone. Each tweet is relayed with the keyword of the rule that matched it.
* ``search``: :meth:`tweepy.Client.search_recent_tweets` polled with ``since_id`` and paging, for
  access tiers without the filtered stream. Rate limits are waited out, never fatal.

The token, its redaction, errors and backoff: :mod:`ingest.x_api`.

Stopping (``stop`` set by SIGTERM or Ctrl-C) takes effect within a second in both modes: every wait
(a reconnect's backoff, the poll interval, a rate limit of 15 minutes) waits on ``stop``, and an
open stream is cut at once instead of at its next keep-alive. Transient failures (network errors,
5xx answers) are retried with capped exponential backoff; only what retrying cannot fix (401, 403)
stops the relay.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import requests
import tweepy

from ingest.x_api import TOKEN_ENV, Backoff, TwitterSetupError, explain, point_at_api
from sentiment.schema import Tweet

log = logging.getLogger(__name__)

RULE_TAG_PREFIX = "tweet-sentiment:"
TWEET_FIELDS = ["created_at", "author_id", "lang"]
EXPANSIONS = ["author_id"]
USER_FIELDS = ["username"]


def rule_value(keyword: str, lang: str | None, no_retweets: bool) -> str:
    """The filtered-stream / search query for one keyword, with the optional operators."""
    term = f'"{keyword}"' if " " in keyword else keyword
    parts = [term]
    if lang:
        parts.append(f"lang:{lang}")
    if no_retweets:
        parts.append("-is:retweet")
    return " ".join(parts)


def search_query(keywords: list[str], lang: str | None, no_retweets: bool) -> str:
    terms = " OR ".join(f'"{k}"' if " " in k else k for k in keywords)
    parts = [f"({terms})" if len(keywords) > 1 else terms]
    if lang:
        parts.append(f"lang:{lang}")
    if no_retweets:
        parts.append("-is:retweet")
    return " ".join(parts)


@dataclass(frozen=True)
class RuleChanges:
    added: list[str]
    deleted: list[str]
    kept: list[str]


def sync_rules(client: tweepy.StreamingClient, keywords: list[str], lang: str | None, no_retweets: bool) -> RuleChanges:
    """Make this tool's stream rules match ``keywords``; leave other rules alone.

    Raises:
        TwitterSetupError: on 401 or 403 (see :func:`explain`).
    """
    try:
        existing = client.get_rules().data or []
        wanted = {RULE_TAG_PREFIX + k: rule_value(k, lang, no_retweets) for k in keywords}
        ours = [r for r in existing if (r.tag or "").startswith(RULE_TAG_PREFIX)]
        stale = [r for r in ours if wanted.get(r.tag) != r.value]
        present = {r.tag for r in ours if wanted.get(r.tag) == r.value}
        missing = [tweepy.StreamRule(value=v, tag=t) for t, v in wanted.items() if t not in present]
        if stale:
            client.delete_rules([r.id for r in stale])
        if missing:
            response = client.add_rules(missing)
            errors = getattr(response, "errors", None)
            if errors:
                raise TwitterSetupError(f"the API refused stream rules: {errors}")
    except tweepy.HTTPException as e:
        raise TwitterSetupError(explain(e)) from None
    except requests.RequestException as e:
        raise TwitterSetupError(f"cannot reach the X API ({type(e).__name__}): check the network or proxy") from None
    return RuleChanges(added=[r.value for r in missing], deleted=[r.value for r in stale], kept=sorted(present))


def tweet_record(tweet: tweepy.Tweet, users: dict[str, str], keyword: str | None) -> Tweet:
    created = tweet.created_at or datetime.now(UTC)
    return Tweet(
        id=str(tweet.id),
        created_at=created.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        user=users.get(str(tweet.author_id), str(tweet.author_id or "")),
        text=tweet.text,
        keyword=keyword,
    )


def keyword_for(text: str, keywords: list[str]) -> str | None:
    lowered = text.lower()
    return next((k for k in keywords if k.lower() in lowered), keywords[0] if keywords else None)


class RelayStream(tweepy.StreamingClient):
    """A filtered stream that hands each tweet to ``emit`` and reports why it stopped."""

    def __init__(self, bearer_token: str, emit: Callable[[Tweet], None], **kwargs) -> None:
        super().__init__(bearer_token, **kwargs)
        self.emit = emit
        self.stop_reason: str | None = None  # "error:<status>", "connection", "closed"
        self.received = 0
        self._response: requests.Response | None = None
        self.session.hooks["response"].append(self._keep_response)
        point_at_api(self.session)

    def _keep_response(self, response: requests.Response, *args, **kwargs) -> requests.Response:
        self._response = response
        return response

    def abort(self) -> None:
        """Disconnect now, even while blocked reading (the API sends a keep-alive only every 20 s)."""
        self.stop_reason = self.stop_reason or "stopped"
        self.disconnect()
        sock = _socket_of(self._response)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def watch(self, stop: threading.Event) -> threading.Event:
        """Abort this stream when ``stop`` is set; set the returned event once the stream is over."""
        over = threading.Event()

        def run() -> None:
            while not over.is_set():
                if stop.wait(0.2):
                    self.abort()
                    return

        threading.Thread(target=run, name="stream-watch", daemon=True).start()
        return over

    def on_connect(self) -> None:
        log.info("connected to the filtered stream")

    def on_response(self, response: tweepy.StreamResponse) -> None:
        tweet = response.data
        if tweet is None:
            return
        users = {str(u.id): u.username for u in response.includes.get("users", [])}
        tags = [r.tag for r in response.matching_rules if (r.tag or "").startswith(RULE_TAG_PREFIX)]
        keyword = tags[0][len(RULE_TAG_PREFIX) :] if tags else None
        self.received += 1
        self.emit(tweet_record(tweet, users, keyword))

    def on_errors(self, errors) -> None:
        log.warning("the stream sent errors: %s", errors)

    def on_request_error(self, status_code: int) -> None:
        self.stop_reason = f"error:{status_code}"
        self.disconnect()

    def on_connection_error(self) -> None:
        self.stop_reason = "connection"
        self.disconnect()

    def on_closed(self, response) -> None:
        self.stop_reason = "closed"
        self.disconnect()  # reconnect from run_stream, with its backoff


def _socket_of(response: requests.Response | None) -> socket.socket | None:
    """The socket a streamed response reads from (urllib3's connection, or http.client's file)."""
    raw = getattr(response, "raw", None)
    sock = getattr(getattr(raw, "_connection", None), "sock", None)
    if sock is None:  # a response that closes its connection at the end has handed it over
        sock = getattr(getattr(getattr(getattr(raw, "_fp", None), "fp", None), "raw", None), "_sock", None)
    return sock if isinstance(sock, socket.socket) else None


def connect_once(token: str, emit: Callable[[Tweet], None], stop: threading.Event) -> RelayStream:
    """One connection to the filtered stream, until it drops or ``stop`` is set (which cuts it)."""
    stream = RelayStream(token, emit, max_retries=0)
    over = stream.watch(stop)
    try:
        stream.filter(tweet_fields=TWEET_FIELDS, expansions=EXPANSIONS, user_fields=USER_FIELDS)
    except Exception:
        if not stop.is_set():
            raise
    finally:
        over.set()
    return stream


def run_stream(
    token: str,
    keywords: list[str],
    emit: Callable[[Tweet], None],
    stop: threading.Event,
    lang: str | None = None,
    no_retweets: bool = False,
    backoff: Backoff | None = None,
    sleep: Callable[[float], object] | None = None,
    max_connections: int | None = None,
) -> int:
    """Sync the rules and relay the filtered stream until ``stop`` is set; reconnect on drops.

    Returns the number of tweets relayed. ``sleep`` (default: waiting on ``stop``) waits between
    connections.

    Raises:
        TwitterSetupError: on 401 or 403, which retrying cannot fix.
    """
    backoff = backoff or Backoff()
    sleep = sleep or stop.wait
    rules_client = tweepy.StreamingClient(token)
    point_at_api(rules_client.session)
    changes = sync_rules(rules_client, keywords, lang, no_retweets)
    log.info("stream rules: added %s, deleted %s, kept %s", changes.added, changes.deleted, changes.kept)
    total, connections = 0, 0
    while not stop.is_set() and (max_connections is None or connections < max_connections):
        stream = connect_once(token, emit, stop)
        connections += 1
        total += stream.received
        if stream.received:
            backoff.reset()
        reason = stream.stop_reason
        if reason in ("error:401",):
            raise TwitterSetupError(f"the API rejected the bearer token (401 Unauthorized): check {TOKEN_ENV}")
        if reason == "error:403":
            raise TwitterSetupError("the filtered stream refused this account (403): use --mode search")
        if stop.is_set() or (max_connections is not None and connections >= max_connections):
            break
        if reason == "error:429":
            delay = max(60.0, backoff.next())
            until = datetime.fromtimestamp(time.time() + delay, tz=UTC).strftime("%H:%M:%S UTC")
            log.warning("rate limited (429); waiting until %s before reconnecting", until)
        else:
            delay = backoff.next()
            log.warning(
                "stream disconnected (%s); reconnecting in %.1fs (attempt %d)",
                reason or "ended",
                delay,
                backoff.attempt,
            )
        sleep(delay)
    return total


def poll_search(
    client: tweepy.Client,
    keywords: list[str],
    emit: Callable[[Tweet], None],
    stop: threading.Event,
    lang: str | None = None,
    no_retweets: bool = False,
    interval: float = 30.0,
    sleep: Callable[[float], object] | None = None,
    max_polls: int | None = None,
    backoff: Backoff | None = None,
) -> int:
    """Poll recent search for new tweets (``since_id``), oldest first; wait out rate limits and
    retry transient failures (network errors, 5xx) with backoff.

    The first poll relays only the newest page; later polls page through everything newer than the
    last tweet seen. ``sleep`` (default: waiting on ``stop``) waits between polls and retries.
    Returns the number of tweets relayed.

    Raises:
        TwitterSetupError: on 401, 403 and other answers that retrying cannot fix.
    """
    sleep = sleep or stop.wait
    backoff = backoff or Backoff(cap=120.0)
    point_at_api(client.session)
    query = search_query(keywords, lang, no_retweets)
    since_id: str | None = None
    total, polls = 0, 0
    while not stop.is_set() and (max_polls is None or polls < max_polls):
        polls += 1
        page_token: str | None = None
        fresh: list[Tweet] = []
        newest: str | None = None
        while not stop.is_set():
            response = _search_page(client, query, since_id, page_token, sleep, backoff)
            if response is None:
                continue  # waited (rate limit, transient error): ask again, unless stopped
            users = {str(u.id): u.username for u in (response.includes or {}).get("users", [])}
            for tweet in response.data or []:
                fresh.append(tweet_record(tweet, users, keyword_for(tweet.text, keywords)))
            meta = response.meta or {}
            newest = newest or meta.get("newest_id")
            page_token = meta.get("next_token")
            if not page_token or since_id is None:
                break
        for record in reversed(fresh):  # the API answers newest first
            emit(record)
        total += len(fresh)
        if newest:
            since_id = newest
        log.info("search: %d new tweet(s) (total %d)", len(fresh), total)
        if max_polls is None or polls < max_polls:
            sleep(interval)
    return total


def _search_page(
    client: tweepy.Client,
    query: str,
    since_id: str | None,
    page_token: str | None,
    sleep: Callable[[float], object],
    backoff: Backoff,
) -> tweepy.Response | None:
    """One page of recent search, or None after waiting out a rate limit or a transient failure."""
    try:
        response = client.search_recent_tweets(
            query,
            since_id=since_id,
            next_token=page_token,
            max_results=100,
            tweet_fields=TWEET_FIELDS,
            expansions=EXPANSIONS,
            user_fields=USER_FIELDS,
        )
    except tweepy.TooManyRequests as e:
        reset = float(e.reset_time) if getattr(e, "reset_time", None) else time.time() + 60
        wait = max(1.0, reset - time.time() + 1)
        until = datetime.fromtimestamp(reset, tz=UTC).strftime("%H:%M:%S UTC")
        log.warning("rate limited (429); waiting until %s (%.0fs)", until, wait)
        sleep(wait)
        return None
    except (tweepy.TwitterServerError, requests.RequestException) as e:
        delay = backoff.next()
        reason = explain(e) if isinstance(e, tweepy.HTTPException) else f"cannot reach the X API ({type(e).__name__})"
        log.warning("search failed: %s; retrying in %.1fs (attempt %d)", reason, delay, backoff.attempt)
        sleep(delay)
        return None
    except tweepy.HTTPException as e:
        raise TwitterSetupError(explain(e)) from None
    backoff.reset()
    return response


def relay_live(
    mode: str,
    token: str,
    keywords: list[str],
    emit: Callable[[Tweet], None],
    stop: threading.Event,
    lang: str | None,
    no_retweets: bool,
    interval: float,
) -> None:
    """Relay live tweets (the filtered stream, or recent search every ``interval`` seconds) to ``emit``
    until the source ends, Ctrl-C, or ``stop``; ``stop`` is set at the end either way."""
    try:
        if mode == "stream":
            run_stream(token, keywords, emit, stop, lang, no_retweets)
        else:
            client = tweepy.Client(bearer_token=token, wait_on_rate_limit=False)
            poll_search(client, keywords, emit, stop, lang, no_retweets, interval)
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()


def dedupe(keywords: Iterable[str]) -> list[str]:
    out = list(dict.fromkeys(k.strip() for k in keywords if k.strip()))
    if not out:
        raise ValueError("give at least one --track KEYWORD")
    return out
