"""Relay tweets to the Spark job: into the durable spool (default) or over a plain TCP socket.

Usage: python -m ingest replay --file PATH [--track KEYWORD ...] [--rate N] [--loop] [--limit N]
       [--spool DIR] [--start-over] [--transport spool|socket] [--host H] [--port P]
       python -m ingest lines --file PATH.jsonl [--rate N] [--spool DIR] [--start-over]
       python -m ingest twitter --track KEYWORD [--track ...] [--mode stream|search] [--lang en]
       [--no-retweets] [--token-file FILE] [--spool DIR] [--transport spool|socket]

A finite replay into the spool resumes where an earlier run of the same command stopped (the
records carry their position in the file), marks the spool complete at its end, and does nothing
when run again after that (``--start-over`` empties the spool first). The twitter command reads
the bearer token from TWITTER_BEARER_TOKEN (or --token-file).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from ingest import spool as spool_log
from ingest.relay import (
    LiveSpoolWriter,
    RelayStats,
    SocketRelay,
    SpoolStats,
    SpoolTicker,
    TweetBuffer,
    feed,
    write_records,
)
from ingest.replay import BUNDLED_SAMPLE, jsonl_records, replay_records, replay_tweets, source_key
from ingest.spool import Spool, SpoolError
from sentiment.config import TRANSPORTS, Config, ConfigError, RelayConfig, load_config
from sentiment.folders import FolderBusy, UnsafeDelete
from sentiment.logs import setup_logging
from sentiment.sentiment140 import ReadStats

log = logging.getLogger("ingest")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Relay tweets to the Spark job: into the spool (default) or over a TCP socket.",
    )
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
        action="extend",
        nargs="+",
        default=[],
        metavar="KEYWORD",
        help="relay only tweets containing a KEYWORD (case-insensitive): --track love hate; repeatable",
    )
    r.add_argument("--rate", type=float, help="tweets per second; 0 = as fast as the client reads (default from conf)")
    r.add_argument("--loop", action="store_true", help="start over at the end of the file")
    r.add_argument("--limit", type=int, help="stop after N tweets")
    r.add_argument("--host", help="--transport socket: bind address (default from conf: 127.0.0.1)")
    r.add_argument("--port", type=int, help="--transport socket: port (default from conf)")
    r.add_argument(
        "--buffer", type=int, help="--transport socket: tweets held while no client is connected (default from conf)"
    )
    add_transport_args(r)
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
    t.add_argument(
        "--track",
        action="extend",
        nargs="+",
        required=True,
        metavar="KEYWORD",
        help="keywords to track: --track love hate; repeatable",
    )
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
    t.add_argument("--host", help="--transport socket: bind address (default from conf: 127.0.0.1)")
    t.add_argument("--port", type=int, help="--transport socket: port (default from conf)")
    t.add_argument(
        "--buffer",
        type=int,
        help="tweets held in memory while the spool cannot take them (--transport socket: while no client is "
        "connected); beyond it the oldest are dropped and counted (default from conf)",
    )
    add_transport_args(t)

    j = sub.add_parser(
        "lines",
        help="replay a JSON-lines file as is (one tweet object per line; the job quarantines bad lines)",
    )
    j.add_argument("--file", type=Path, required=True, help="JSON-lines file")
    j.add_argument("--rate", type=float, help="lines per second; 0 = as fast as possible (default from conf)")
    add_transport_args(j, socket=False)
    return p


def add_transport_args(p: argparse.ArgumentParser, socket: bool = True) -> None:
    p.add_argument("--config", help="TOML configuration file")
    p.add_argument("--spool", help="spool folder (default from conf: output/spool)")
    p.add_argument("--start-over", action="store_true", help="empty the spool and its archive first")
    if socket:
        p.add_argument(
            "--transport",
            choices=TRANSPORTS,
            help="spool: durable log, exactly once (default from conf); socket: serve Spark's socket source, "
            "at most once",
        )


def relay_config_from_args(args: argparse.Namespace) -> tuple[RelayConfig, Config]:
    """The configured relay settings with the command line's options on top."""
    config = load_config(args.config)
    options = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "rate": getattr(args, "rate", None),
        "buffer_size": getattr(args, "buffer", None),
        "transport": getattr(args, "transport", None),
        "spool": args.spool,
    }
    relay = dataclasses.replace(config.relay, **{k: v for k, v in options.items() if v is not None})
    return relay, config


def open_spool(relay: RelayConfig, config: Config, start_over: bool) -> Spool:
    """Lock and open the configured spool (emptied first with ``start_over``)."""
    folder = config.resolve(relay.spool)
    spool = Spool(
        folder,
        segment_records=relay.segment_records,
        segment_seconds=relay.segment_seconds,
        max_pending_bytes=relay.max_pending_bytes,
        retention_hours=relay.retention_hours,
        retention_bytes=relay.retention_bytes,
    )
    spool.open(start_over=start_over)
    if start_over:
        print(f"relay: emptied {folder} and {spool_log.archive_dir(folder)} (new spool {spool.spool_id})", flush=True)
    return spool


def spool_replay(records, src: str, relay: RelayConfig, config: Config, args: argparse.Namespace) -> int:
    """Append a finite, numbered record stream to the spool, resuming after what is already there."""
    spool = open_spool(relay, config, args.start_over)
    done = spool.complete()
    limit = getattr(args, "limit", None)
    if done and done.get("src") == src and done.get("limit") == limit:
        print(
            f"relay: {args.file} is already wholly in {spool.folder} ({done['records']} record(s)); nothing to do. "
            "Use --start-over to relay it again.",
            flush=True,
        )
        return 0
    spool.clear_complete()
    last = spool.last or {}
    skip = last["seq"] + 1 if last.get("src") == src and last.get("seq") is not None else 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = SpoolStats()
    print(
        f"relay: writing {args.file} to {spool.folder} at {relay.rate or 'max'} tweets/s"
        + (f", resuming after record {skip}" if skip else ""),
        flush=True,
    )
    numbered = (dataclasses.replace(r, src=src) for r in itertools.islice(records, skip, None))
    try:
        with SpoolTicker(spool):
            write_records(numbered, spool, relay.rate, stop, stats)
            if not stop.is_set():
                spool.mark_complete(src, skip + stats.written, limit)
    except KeyboardInterrupt:
        pass
    finally:
        spool.close()
    state = "complete" if not stop.is_set() else "stopped"
    print(
        f"relay: {stats.written} record(s) written ({stats.errors} to be quarantined), {skip} already there; "
        f"replay {state}; spool offsets up to {spool.next_offset}",
        flush=True,
    )
    return 0


def run_replay(args: argparse.Namespace) -> int:
    relay_config, config = relay_config_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if relay_config.transport == "spool" and not args.count:
        src = source_key(args.file, sorted(args.track), args.loop)
        records = replay_records(args.file, track=args.track, loop=args.loop, limit=args.limit)
        return spool_replay(records, src, relay_config, config, args)

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
    from ingest.twitter import dedupe, relay_live
    from ingest.x_api import install_redaction, load_bearer_token

    token = load_bearer_token(args.token_file)
    install_redaction(token)
    keywords = dedupe(args.track)
    relay_config, config = relay_config_from_args(args)
    if relay_config.transport == "spool":
        return twitter_to_spool(args, token, keywords, relay_config, config)
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


def twitter_to_spool(
    args: argparse.Namespace, token: str, keywords: list[str], relay: RelayConfig, config: Config
) -> int:
    """Live tweets into the spool: the API callback queues them in memory, a writer appends them."""
    from ingest.twitter import relay_live

    spool = open_spool(relay, config, args.start_over)
    spool.clear_complete()
    buffer = TweetBuffer(relay.buffer_size, overflow="drop-oldest")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stats = RelayStats()
    writer = LiveSpoolWriter(spool, buffer, stop, relay.max_line_bytes)

    def emit(tweet) -> None:
        buffer.put(tweet.to_json_line())
        stats.produced += 1

    print(f"relay: writing tweets about {keywords} to {spool.folder} ({args.mode})", flush=True)
    try:
        with SpoolTicker(spool):
            writer.start()
            try:
                relay_live(args.mode, token, keywords, emit, stop, args.lang, args.no_retweets, args.poll_interval)
            except KeyboardInterrupt:
                pass
            finally:
                stop.set()
                writer.join(timeout=5)
    finally:
        spool.close()
    print(
        f"relay: {stats.produced} tweet(s) received, {writer.written} written to the spool, "
        f"{buffer.dropped} dropped (memory buffer full), {len(buffer)} unwritten",
        flush=True,
    )
    if writer.error is not None:
        raise SpoolError(f"the spool writer failed ({type(writer.error).__name__}): {writer.error}")
    return 0


def run_lines(args: argparse.Namespace) -> int:
    relay_config, config = relay_config_from_args(args)
    src = source_key(args.file, "lines")
    return spool_replay(jsonl_records(args.file, relay_config.max_line_bytes), src, relay_config, config, args)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from ingest.x_api import TwitterSetupError

    try:
        if args.command == "replay":
            return run_replay(args)
        if args.command == "twitter":
            return run_twitter(args)
        if args.command == "lines":
            return run_lines(args)
    except SpoolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    except (TwitterSetupError, FolderBusy, UnsafeDelete) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 1


if __name__ == "__main__":
    raise SystemExit(main())
