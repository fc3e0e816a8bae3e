"""The compiled int8 engine with the last layer for every token against the first tokens only.

Usage: python -m benchmarks.last_layer [--model DIR] [--rounds 5] [--sizes 8,64,256]

Both engines (``int8-static``, packed rows) are built in this process, then score the same random
batches of the model's calibration tweets taking turns; prints tweets/s (median of the rounds) per
batch size and the ratio, and how far the two engines' probabilities are apart.
"""

from __future__ import annotations

import argparse
import functools
import random
import statistics
import time

import numpy as np

import model_api.model.engines as engines
from model_api.model.predictor import DEFAULT_MODEL_DIR, SentimentPredictor
from sentiment.logs import setup_logging
from sentiment.model_dir import read_calibration_texts


def build(model: str, first_tokens_only: bool) -> SentimentPredictor:
    original = engines.PackedBertClassifier
    engines.PackedBertClassifier = functools.partial(original, first_tokens_only=first_tokens_only)
    try:
        predictor = SentimentPredictor.from_pretrained(model, precision="int8-static")
        predictor.warm_up()
        return predictor
    finally:
        engines.PackedBertClassifier = original


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.last_layer", description=__doc__.splitlines()[0])
    p.add_argument("--model", default=str(DEFAULT_MODEL_DIR))
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sizes", default="8,64,256")
    args = p.parse_args(argv)
    setup_logging()
    sizes = [int(n) for n in args.sizes.split(",")]
    predictors = {}
    for name, first_only in (("every token", False), ("first tokens", True)):
        started = time.monotonic()
        predictors[name] = build(args.model, first_only)
        print(f"{name}: compiled and warm in {time.monotonic() - started:.1f} s", flush=True)
    texts = read_calibration_texts(args.model, fallback=DEFAULT_MODEL_DIR)
    full, first = (p.predict_proba(texts) for p in predictors.values())
    print(
        f"{len(texts)} tweets: mean |dp| {np.abs(full - first).mean():.4f}, max {np.abs(full - first).max():.4f}, "
        f"same label side of 0.5 {((full > 0.5) == (first > 0.5)).mean():.2%}"
    )
    rng = random.Random(0)
    speed: dict[tuple[str, int], list[float]] = {(name, n): [] for name in predictors for n in sizes}
    for _ in range(args.rounds):
        for n in sizes:
            batch = rng.sample(texts, min(n, len(texts)))
            for name, predictor in predictors.items():
                started = time.perf_counter()
                predictor.predict_proba(batch)
                speed[(name, n)].append(len(batch) / (time.perf_counter() - started))
    print(f"{'batch':>6} {'every token':>12} {'first tokens':>13} {'ratio':>6}   (tweets/s, median of {args.rounds})")
    for n in sizes:
        a, b = (statistics.median(speed[(name, n)]) for name in predictors)
        print(f"{n:>6} {a:>12.1f} {b:>13.1f} {b / a:>6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
