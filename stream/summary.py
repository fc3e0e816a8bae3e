"""What the job has written: the rows of the output folder per sentiment label.

Usage: python -m stream.summary [--output DIR] [--config FILE]

The output folder defaults to ``stream.output`` of the configuration; a folder that does not exist
yet, or has no row yet, is reported, not an error.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sentiment.config import load_config
from sentiment.labels import LABELS
from sentiment.logs import setup_logging
from sentiment.parquet_folder import read_folder


def summary(output: Path) -> str:
    """The lines ``run_pipeline.sh`` prints at the end of a run: rows in all, then per label."""
    if not output.exists() or not any(output.rglob("*.parquet")):
        return f"pipeline: no parquet was written to {output}"
    rows = read_folder(output, columns=["sentiment"])
    if rows.empty:
        return f"pipeline: no rows yet in {output}"
    labels = rows["sentiment"]
    counts = labels.value_counts()
    lines = [f"\npipeline: {len(labels)} row(s) in {output} (this run and earlier ones; --start-over to begin afresh)"]
    lines += [f"  {label:<9}{int(counts.get(label, 0)):>8}" for label in LABELS]
    lines.append(f'\nRead it with pandas:\n  import pandas as pd\n  df = pd.read_parquet("{output}")')
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stream.summary", description=__doc__.split("\n")[0])
    p.add_argument("--output", type=Path, help="parquet output folder (default from conf: stream.output)")
    p.add_argument("--config", help="TOML configuration file")
    args = p.parse_args(argv)
    setup_logging()
    config = load_config(args.config)
    print(summary(args.output or config.resolve(config.stream.output)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
