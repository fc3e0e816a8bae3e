"""Compare inference precisions of the predictor side by side: speed and accuracy.

Usage: python -m benchmarks.engines [--model DIR] [--tweets N] [--rows N]

For fp32, bf16 autocast and int8 dynamic quantization, in one run and on the same real tweets:
tweets/s in batches (median of three passes) and binary accuracy on held-out test rows.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from experiments.data import default_training_files, load_split
from model_api.engines import PRECISIONS
from model_api.predictor import DEFAULT_MODEL_DIR, SentimentPredictor


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n")[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    p.add_argument("--tweets", type=int, default=2000, help="tweets per timed pass")
    p.add_argument("--rows", type=int, default=4000, help="test rows for accuracy")
    p.add_argument("--batch-size", type=int, default=64)
    args = p.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    split = load_split(default_training_files())
    texts, labels = split.texts["test"][: args.rows], np.array(split.labels["test"][: args.rows])
    timed = texts[: args.tweets]
    base = None
    for precision in PRECISIONS:
        predictor = SentimentPredictor.from_pretrained(args.model, batch_size=args.batch_size, precision=precision)
        predictor.predict_proba(timed[:64])  # warm-up
        rates = []
        for _ in range(3):
            started = time.perf_counter()
            predictor.predict_proba(timed)
            rates.append(len(timed) / (time.perf_counter() - started))
        accuracy = float(((predictor.predict_proba(texts) > 0.5) == labels).mean())
        rate = statistics.median(rates)
        base = base or rate
        print(
            f"{precision:>5}: {rate:7.1f} tweets/s (x{rate / base:.2f}), accuracy {accuracy:.4f} on {len(texts)} "
            f"test rows, batch {args.batch_size}, {torch.get_num_threads()} threads",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
