"""Break the running pipeline on purpose and account for every tweet: the fault benchmark.

Usage: python -m benchmarks.faults [--scenario NAME ...] [--tweets N] [--rate R] [--outage S] [--json]

Runs the scenarios of :mod:`harness.scenarios` (which the tests in ``tests/faults`` assert on)
and prints, for each, the tweets in, the rows out, those lost and duplicated, the seconds to recover
and what a reader polling the output saw. Exits 1 when any tweet was lost or duplicated.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from dataclasses import asdict
from pathlib import Path

from harness.scenarios import SCENARIOS, run_scenario
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.faults", description=__doc__.split("\n")[0])
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="repeatable (default: all)")
    p.add_argument("--tweets", type=int, default=3000, help="tweets replayed per scenario")
    p.add_argument("--rate", type=float, default=60.0, help="tweets/s the relay offers")
    p.add_argument("--outage", type=float, default=30.0, help="seconds the service stays down")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    setup_logging()
    root = Path(tempfile.mkdtemp(prefix="tweetsent-faults-"))
    outcomes = []
    print(f"{'scenario':<16}{'tweets in':>10}{'rows out':>10}{'lost':>6}{'dup':>6}{'recover s':>11}  notes")
    for name in args.scenario or SCENARIOS:
        o = run_scenario(name, root / name, args.tweets, args.rate, args.outage)
        outcomes.append(o)
        print(
            f"{o.scenario:<16}{o.tweets_in:>10}{o.rows_out:>10}{o.lost:>6}{o.duplicated:>6}{o.recover_s:>11}  "
            f"reader {o.reader_reads} reads, {o.reader_errors} errors"
            + (f"; quarantined {o.quarantined} of {o.bad_lines} bad" if o.bad_lines else "")
            + (f"; {o.notes}" if o.notes else ""),
            flush=True,
        )
    if args.json:
        print(json.dumps([asdict(o) for o in outcomes]))
    return 0 if all(o.lost == 0 and o.duplicated == 0 and o.reader_errors == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
