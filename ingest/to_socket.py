"""The relay's runs over a plain TCP socket (Spark's socket source, at most once): a replay, and live tweets.

Usage: ``replay_to_socket(tweets, read_stats, relay, args)``; ``live_to_socket(args, token, keywords, relay)``

Tweets wait in a bounded memory buffer until a client reads them: a replay blocks while it is full,
live tweets drop the oldest (counted, and logged every 30 s).
"""

from __future__ import annotations

import argparse
import logging
import threading
import time
from collections.abc import Iterable

from ingest.relay import RelayStats, SocketRelay, TweetBuffer, buffer_emitter, feed, stop_on_sigterm
from sentiment.config import RelayConfig
from sentiment.schema import Tweet
from sentiment.sentiment140 import ReadStats

log = logging.getLogger("ingest")


def replay_to_socket(
    tweets: Iterable[Tweet], read_stats: ReadStats, relay: RelayConfig, args: argparse.Namespace
) -> int:
    """Serve ``tweets`` to the client at the configured rate; return once it has taken them all."""
    buffer = TweetBuffer(relay.buffer_size, overflow="block")
    stats = RelayStats()
    stop = stop_on_sigterm()

    with SocketRelay(relay.host, relay.port, buffer) as server:
        print(
            f"relay: listening on {relay.host}:{server.port}, replaying {args.file} at {relay.rate or 'max'} tweets/s",
            flush=True,
        )
        try:
            produced = feed(tweets, buffer, relay.rate, stats, stop)
            # Everything is queued; wait until the client has taken it all.
            while not stop.is_set() and not buffer.wait_empty(timeout=0.5):
                pass
            time.sleep(0.2)
        except KeyboardInterrupt:
            produced = stats.produced
        sent = server.stats.sent
    print(
        f"relay: {produced} tweet(s) read, {sent} sent, {len(buffer)} unsent; "
        f"{read_stats.malformed} malformed line(s) skipped"
        + (f" (first: {read_stats.examples[0]})" if read_stats.examples else ""),
        flush=True,
    )
    return 0


def live_to_socket(args: argparse.Namespace, token: str, keywords: list[str], relay: RelayConfig) -> int:
    """Serve live tweets about ``keywords`` to the client until stopped."""
    from ingest.twitter import relay_live

    buffer = TweetBuffer(relay.buffer_size, overflow="drop-oldest")
    stop = stop_on_sigterm()
    stats = RelayStats()
    emit = buffer_emitter(buffer, stats)

    def report() -> None:
        reported = 0
        while not stop.wait(30):
            if buffer.dropped > reported:
                log.warning("buffer full: %d oldest tweet(s) dropped so far (no client reading)", buffer.dropped)
                reported = buffer.dropped

    with SocketRelay(relay.host, relay.port, buffer) as server:
        print(f"relay: listening on {relay.host}:{server.port}, tracking {keywords} ({args.mode})", flush=True)
        threading.Thread(target=report, daemon=True).start()
        relay_live(args.mode, token, keywords, emit, stop, args.lang, args.no_retweets, args.poll_interval)
        sent = server.stats.sent
    print(
        f"relay: {stats.produced} tweet(s) received, {sent} sent, {buffer.dropped} dropped (buffer full), "
        f"{len(buffer)} unsent",
        flush=True,
    )
    return 0
