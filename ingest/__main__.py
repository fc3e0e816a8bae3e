"""Relay tweets to the Spark job over a TCP socket, one JSON object per line.

Usage: python -m ingest replay --file PATH [--track KEYWORD ...] [--rate N] [--loop] [--limit N]
       [--host H] [--port P]
       python -m ingest twitter --track KEYWORD [--track ...] [--mode stream|search] [--lang en]
       [--no-retweets] [--token-file FILE] [--host H] [--port P]

The twitter command reads the bearer token from TWITTER_BEARER_TOKEN (or --token-file).
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from ingest.relay import RelayStats, SocketRelay, TweetBuffer, feed
from ingest.replay import replay_tweets
from sentiment.config import ConfigError, RelayConfig, load_config
from sentiment.sentiment140 import ReadStats

log = logging.getLogger("ingest")

BUNDLED_SAMPLE = Path(__file__).resolve().parent / "data" / "sample_tweets.csv"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ingest", description="Relay tweets to the Spark job over TCP.")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("replay", help="replay a Sentiment140 file")
    r.add_argument(
        "--file",
        type=Path,
        default=BUNDLED_SAMPLE,
        help="Sentiment140 file: six columns, or 'polarity,text' (default: the bundled sample)",
    )
    r.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="KEYWORD",
        help="relay only tweets containing KEYWORD (case-insensitive); repeatable",
    )
    r.add_argument("--rate", type=float, help="tweets per second; 0 = as fast as the client reads (default from conf)")
    r.add_argument("--loop", action="store_true", help="start over at the end of the file")
    r.add_argument("--limit", type=int, help="stop after N tweets")
    r.add_argument("--host", help="bind address (default from conf: 127.0.0.1)")
    r.add_argument("--port", type=int, help="port (default from conf)")
    r.add_argument("--buffer", type=int, help="tweets held while no client is connected (default from conf)")
    r.add_argument("--config", help="TOML configuration file")
    r.add_argument(
        "--count",
        action="store_true",
        help="print how many tweets would be relayed (after --track and --limit) and exit",
    )

    t = sub.add_parser(
        "twitter",
        help="relay live tweets from the X (Twitter) API v2",
        description="Relay live tweets. The bearer token comes from TWITTER_BEARER_TOKEN or --token-file, "
        "never from the command line.",
    )
    t.add_argument("--track", action="append", required=True, metavar="KEYWORD", help="keyword to track; repeatable")
    t.add_argument(
        "--mode",
        choices=("stream", "search"),
        default="stream",
        help="filtered stream (default) or recent-search polling for tiers without the stream",
    )
    t.add_argument("--lang", help="only tweets in this language, e.g. en (default: all)")
    t.add_argument("--no-retweets", action="store_true", help="skip retweets")
    t.add_argument("--poll-interval", type=float, default=30.0, help="seconds between searches (--mode search)")
    t.add_argument("--token-file", help="file holding the bearer token (instead of TWITTER_BEARER_TOKEN)")
    t.add_argument("--host", help="bind address (default from conf: 127.0.0.1)")
    t.add_argument("--port", type=int, help="port (default from conf)")
    t.add_argument(
        "--buffer",
        type=int,
        help="tweets held while no client is connected; beyond it the oldest "
        "are dropped and counted (default from conf)",
    )
    t.add_argument("--config", help="TOML configuration file")
    return p


def relay_config_from_args(args: argparse.Namespace) -> RelayConfig:
    """The configured relay settings with the command line's --host/--port/--rate/--buffer on top."""
    options = {"host": args.host, "port": args.port, "rate": getattr(args, "rate", None), "buffer_size": args.buffer}
    return dataclasses.replace(load_config(args.config).relay, **{k: v for k, v in options.items() if v is not None})


def run_replay(args: argparse.Namespace) -> int:
    relay_config = relay_config_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")

    read_stats = ReadStats()
    tweets = replay_tweets(args.file, track=args.track, loop=args.loop, limit=args.limit, stats=read_stats)
    if args.count:
        if args.loop and args.limit is None:
            raise ValueError("--count with --loop needs --limit: a looped replay never ends")
        print(sum(1 for _ in tweets))
        return 0
    buffer = TweetBuffer(relay_config.buffer_size, overflow="block")
    stats = RelayStats()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    with SocketRelay(relay_config.host, relay_config.port, buffer) as relay:
        print(
            f"relay: listening on {relay_config.host}:{relay.port}, replaying {args.file} "
            f"at {relay_config.rate or 'max'} tweets/s",
            flush=True,
        )
        try:
            produced = feed(tweets, buffer, relay_config.rate, stats, stop)
            # Everything is queued; wait until the client has taken it all.
            while not stop.is_set() and not buffer.wait_empty(timeout=0.5):
                pass
            time.sleep(0.2)
        except KeyboardInterrupt:
            produced = stats.produced
        sent = relay.stats.sent
    print(
        f"relay: {produced} tweet(s) read, {sent} sent, {len(buffer)} unsent; "
        f"{read_stats.malformed} malformed line(s) skipped"
        + (f" (first: {read_stats.examples[0]})" if read_stats.examples else ""),
        flush=True,
    )
    return 0


def run_twitter(args: argparse.Namespace) -> int:
    from ingest.twitter import dedupe, install_redaction, load_bearer_token, relay_live

    token = load_bearer_token(args.token_file)
    install_redaction(token)
    keywords = dedupe(args.track)
    relay_config = relay_config_from_args(args)
    buffer = TweetBuffer(relay_config.buffer_size, overflow="drop-oldest")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = RelayStats()

    def emit(tweet) -> None:
        buffer.put(tweet.to_json_line())
        stats.produced += 1

    def report() -> None:
        reported = 0
        while not stop.wait(30):
            if buffer.dropped > reported:
                log.warning("buffer full: %d oldest tweet(s) dropped so far (no client reading)", buffer.dropped)
                reported = buffer.dropped

    with SocketRelay(relay_config.host, relay_config.port, buffer) as relay:
        print(f"relay: listening on {relay_config.host}:{relay.port}, tracking {keywords} ({args.mode})", flush=True)
        threading.Thread(target=report, daemon=True).start()
        try:
            relay_live(args.mode, token, keywords, emit, stop, args.lang, args.no_retweets, args.poll_interval)
        except KeyboardInterrupt:
            pass
        finally:
            stop.set()
        sent = relay.stats.sent
    print(
        f"relay: {stats.produced} tweet(s) received, {sent} sent, {buffer.dropped} dropped (buffer full), "
        f"{len(buffer)} unsent",
        flush=True,
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from ingest.twitter import TwitterSetupError

    try:
        if args.command == "replay":
            return run_replay(args)
        if args.command == "twitter":
            return run_twitter(args)
    except TwitterSetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
