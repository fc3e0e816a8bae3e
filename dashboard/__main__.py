"""Start the dashboard: a Streamlit server on 127.0.0.1 that shows an output folder and refreshes itself.

Usage: python -m dashboard [--output-root output] [--port 8501] [--host 127.0.0.1] [--refresh-seconds 5]
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from sentiment.config import load_config
from sentiment.logs import setup_logging

APP = Path(__file__).resolve().with_name("app.py")
log = logging.getLogger("dashboard")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    trends = load_config().trends
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--output-root", default="output", help="the pipeline's output folder (default: output)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=trends.dashboard_port, help="port (default: %(default)s)")
    parser.add_argument(
        "--refresh-seconds",
        type=float,
        default=trends.dashboard_refresh_seconds,
        help="how often the page reloads its data (default: %(default)s)",
    )
    return parser.parse_args(argv)


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
        "--output-root",
        str(Path(args.output_root).resolve()),
        "--refresh-seconds",
        str(args.refresh_seconds),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    setup_logging()
    if args.refresh_seconds <= 0:
        log.error("--refresh-seconds must be > 0, got %s", args.refresh_seconds)
        return 2
    from streamlit.web import cli

    log.info("dashboard of %s on http://%s:%d", Path(args.output_root).resolve(), args.host, args.port)
    cli.main(streamlit_args(args), prog_name="streamlit", standalone_mode=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
