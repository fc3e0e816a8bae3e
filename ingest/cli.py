"""The relay's command line: its parser, and the relay settings it gives (the config with the options on top).

Usage: ``args = build_parser().parse_args(argv)``; ``relay, config = relay_config_from_args(args)``
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ingest.replay import BUNDLED_SAMPLE
from sentiment.config import TRANSPORTS, Config, RelayConfig, load_config


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
