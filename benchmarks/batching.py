"""How to lay a batch of tweets out in forward passes: fixed chunks, length-aware cuts, packed rows.

Usage: python -m benchmarks.batching [--model DIR] [--precision NAME] [--sizes 8,44,256] [--rounds 5]
       [--threads N]

Random batches of real tweets (the bundled sample), as concurrent requests or the Spark job send
them. One text per row, padded: cut into fixed chunks of 64 or 16, or where padding costs more
than another pass (``split_by_length`` with several pass overheads). Packed: several texts per
row of ``max_length`` tokens (``model_api.model.packing``; the service's default for BERT models).
Each strategy runs every batch size once untimed (so every shape is compiled), then the
strategies take turns for ``--rounds`` rounds on the same batches; the table gives the median
tweets/s and the ratio to fixed chunks of 64.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time

import torch

from ingest.replay import BUNDLED_SAMPLE
from model_api.model.predictor import DEFAULT_MODEL_DIR, SentimentPredictor, split_by_length
from sentiment.config import PRECISIONS, load_config
from sentiment.logs import setup_logging
from sentiment.sentiment140 import iter_rows


def fixed_chunks(size: int):
    def cut(lengths, max_rows):
        return [*range(size, len(lengths), size), len(lengths)]

    return cut


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.batching", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR), help="model directory (default: the bundled one)")
    p.add_argument("--precision", choices=PRECISIONS, default=load_config().service.precision)
    p.add_argument("--sizes", default="8,44,256", help="texts per batch (44: a typical micro-batch under load)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.threads)
    tweets = [r.text for r in iter_rows(BUNDLED_SAMPLE)]
    padded = SentimentPredictor.from_pretrained(args.model, precision=args.precision, pack=False)
    packed = SentimentPredictor.from_pretrained(args.model, precision=args.precision, pack=True)
    if not packed.packed:
        print(f"note: {args.model} with {args.precision} cannot be packed; the packed row runs padded")
    for predictor in (padded, packed):
        predictor.warm_up()
    rng = random.Random(0)
    sizes = [int(s) for s in args.sizes.split(",")]
    batches = {n: [rng.sample(tweets, n) for _ in range(max(8, 700 // n))] for n in sizes}
    strategies = {
        "fixed chunks of 64": fixed_chunks(64),
        "fixed chunks of 16": fixed_chunks(16),
        **{f"length-aware, overhead {o}": functools.partial(split_by_length, overhead=o) for o in (64, 128, 256)},
        "packed rows": None,
    }
    rates: dict[tuple[str, int], list[float]] = {(s, n): [] for s in strategies for n in sizes}
    for rnd in range(args.rounds + 1):
        for name, cut in strategies.items():
            predictor = packed if cut is None else padded
            if cut is not None:
                predictor.split_passes = cut
            for n, group in batches.items():
                started = time.perf_counter()
                for batch in group:
                    predictor.predict(batch)
                if rnd:  # round 0 compiles every shape
                    rates[(name, n)].append(n * len(group) / (time.perf_counter() - started))
    print(f"\n{args.model}, {args.precision}, {args.threads} thread(s), median of {args.rounds} rounds, tweets/s")
    print(f"{'strategy':<30}" + "".join(f"{f'batch {n}':>14}{'x fixed 64':>12}" for n in sizes))
    for name in strategies:
        row = f"{name:<30}"
        for n in sizes:
            median = statistics.median(rates[(name, n)])
            row += f"{median:>14.0f}{median / statistics.median(rates[('fixed chunks of 64', n)]):>12.2f}"
        print(row)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
