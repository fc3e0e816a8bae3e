"""Print settings of the effective configuration, one per line, for shell scripts.

Usage: python -m sentiment.show_config KEY [KEY ...] [--config FILE]

A KEY is ``section.key`` as in conf/pipeline.toml (``relay.port``), after the environment's
overrides, or ``service_url``: the URL (or comma-separated URLs) the job scores with.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from sentiment.config import Config, ConfigError, load_config
from sentiment.logs import setup_logging


def setting(config: Config, key: str) -> object:
    """The value of ``key`` (``section.key`` or ``service_url``).

    Raises:
        KeyError: naming the key, when the configuration has no such setting.
    """
    value: object = config
    for part in key.split("."):
        if part.startswith("_") or not hasattr(value, part):
            raise KeyError(f"no setting {key!r} (expected section.key as in conf/pipeline.toml, or service_url)")
        value = getattr(value, part)
    if callable(value) or dataclasses.is_dataclass(value):
        raise KeyError(f"{key!r} is not a setting (a section or a method): name section.key")
    return value


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sentiment.show_config", description=__doc__.split("\n")[0])
    p.add_argument("keys", nargs="+", metavar="KEY", help="section.key (e.g. relay.port) or service_url")
    p.add_argument("--config", help="TOML configuration file")
    args = p.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
        values = [setting(config, key) for key in args.keys]
    except (ConfigError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    print(*values, sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
