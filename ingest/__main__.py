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
import sys

from ingest.cli import build_parser, relay_config_from_args
from ingest.replay import jsonl_records, replay_records, replay_tweets, source_key
from ingest.spool import SpoolError
from ingest.to_socket import live_to_socket, replay_to_socket
from ingest.to_spool import live_to_spool, replay_to_spool
from sentiment.config import ConfigError
from sentiment.folders import FolderBusy, UnsafeDelete
from sentiment.logs import setup_logging
from sentiment.sentiment140 import ReadStats


def run_replay(args: argparse.Namespace) -> int:
    relay_config, config = relay_config_from_args(args)
    if args.limit is not None and args.limit < 1:
        raise ValueError(f"--limit must be at least 1, got {args.limit}")
    if relay_config.transport == "spool" and not args.count:
        src = source_key(args.file, sorted(args.track), args.loop)
        records = replay_records(args.file, track=args.track, loop=args.loop, limit=args.limit)
        return replay_to_spool(records, src, relay_config, config, args)
    read_stats = ReadStats()
    tweets = replay_tweets(args.file, track=args.track, loop=args.loop, limit=args.limit, stats=read_stats)
    if args.count:
        if args.loop and args.limit is None:
            raise ValueError("--count with --loop needs --limit: a looped replay never ends")
        print(sum(1 for _ in tweets))
        return 0
    return replay_to_socket(tweets, read_stats, relay_config, args)


def run_twitter(args: argparse.Namespace) -> int:
    from ingest.twitter import dedupe
    from ingest.x_api import install_redaction, load_bearer_token

    token = load_bearer_token(args.token_file)
    install_redaction(token)
    keywords = dedupe(args.track)
    relay_config, config = relay_config_from_args(args)
    if relay_config.transport == "spool":
        return live_to_spool(args, token, keywords, relay_config, config)
    return live_to_socket(args, token, keywords, relay_config)


def run_lines(args: argparse.Namespace) -> int:
    relay_config, config = relay_config_from_args(args)
    src = source_key(args.file, "lines")
    return replay_to_spool(jsonl_records(args.file, relay_config.max_line_bytes), src, relay_config, config, args)


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
