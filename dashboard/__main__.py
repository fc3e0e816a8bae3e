"""Start the dashboard: a Streamlit server on 127.0.0.1 that shows the job's outputs and refreshes itself.

Usage: python -m dashboard [--output-root DIR | --tweets DIR --trends DIR --alerts DIR] [--port 8501]
       [--host 127.0.0.1] [--refresh-seconds 5] [--min-tweets 5] [--config FILE]

By default it reads the folders the job writes: ``stream.output``, ``trends.output`` and
``trends.alerts`` of the configuration; ``--output-root DIR`` reads ``DIR/tweets``, ``DIR/trends``
and ``DIR/alerts`` instead (a demo output, a copy), and ``--tweets``/``--trends``/``--alerts`` set one.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from dashboard.data import OutputPaths
from sentiment.config import load_config
from sentiment.logs import setup_logging

APP = Path(__file__).resolve().with_name("app.py")
log = logging.getLogger("dashboard")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The options, with the configured folders, port and refresh filled in where none was given."""
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", help="read DIR/tweets, DIR/trends and DIR/alerts (default: the configured)")
    parser.add_argument("--tweets", help="the scored tweets (default from conf: stream.output)")
    parser.add_argument("--trends", help="the windows per keyword (default from conf: trends.output)")
    parser.add_argument("--alerts", help="the alerts (default from conf: trends.alerts)")
    parser.add_argument(
        "--labels", help="the labels table the labelling page writes (default: labels/ beside the tweets)"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default from conf: trends.dashboard_port)")
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        help="how often the page reloads its data (conf: trends.dashboard_refresh_seconds)",
    )
    parser.add_argument(
        "--min-tweets",
        type=int,
        help="a chart point from fewer tweets is drawn faded (conf: trends.dashboard_min_tweets)",
    )
    parser.add_argument("--config", help="TOML configuration file")
    args = parser.parse_args(argv)
    config = load_config(args.config)
    base = OutputPaths.under(args.output_root) if args.output_root else OutputPaths.configured(config)
    args.tweets = Path(args.tweets or base.tweets).resolve()
    args.trends = Path(args.trends or base.trends).resolve()
    args.alerts = Path(args.alerts or base.alerts).resolve()
    args.labels = Path(args.labels or OutputPaths(args.tweets, args.trends, args.alerts).labels).resolve()
    args.port = args.port if args.port is not None else config.trends.dashboard_port
    args.service_url = config.service_url
    args.token_file = config.service.token_file  # a path; the token itself stays in the environment or the file
    if args.refresh_seconds is None:
        args.refresh_seconds = config.trends.dashboard_refresh_seconds
    if args.min_tweets is None:
        args.min_tweets = config.trends.dashboard_min_tweets
    return args


def streamlit_args(args: argparse.Namespace) -> list[str]:
    """The arguments of ``streamlit run``: no telemetry, no browser, no file watcher, one address."""
    return [
        "run",
        str(APP),
        "--server.address",
        args.host,
        "--server.port",
        str(args.port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--theme.base",
        "light",
        "--",
        "--tweets",
        str(args.tweets),
        "--trends",
        str(args.trends),
        "--alerts",
        str(args.alerts),
        "--labels",
        str(args.labels),
        "--service-url",
        args.service_url,
        "--token-file",
        args.token_file,
        "--refresh-seconds",
        str(args.refresh_seconds),
        "--min-tweets",
        str(args.min_tweets),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if args.refresh_seconds <= 0:
        log.error("--refresh-seconds must be > 0, got %s", args.refresh_seconds)
        return 2
    if args.min_tweets < 1:
        log.error("--min-tweets must be at least 1, got %s", args.min_tweets)
        return 2
    from streamlit.web import cli

    log.info("dashboard of %s and %s on http://%s:%d", args.trends, args.tweets, args.host, args.port)
    cli.main(streamlit_args(args), prog_name="streamlit", standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
