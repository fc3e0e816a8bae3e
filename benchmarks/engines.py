"""Compare the predictor's inference engines side by side: speed and accuracy.

Usage: python -m benchmarks.engines [--model DIR ...] [--tweets N] [--precisions fp32,int8,...] [--threads N]

For every model (``--model`` repeated: e.g. the bundled one and a distilled one) and engine (see
``model_api/model/engines.py``), in one run and on the same real tweets: seconds until ready (load,
quantize, compile, warm up), tweets/s in batches of the service's size (median of three passes),
and binary accuracy on the whole validation split, with speed and accuracy against the first
model's fp32.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from experiments.data import default_training_files, load_split
from model_api.model.predictor import DEFAULT_MODEL_DIR, SentimentPredictor
from sentiment.config import PRECISIONS, load_config
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engines", description=__doc__.split("\n")[0])
    p.add_argument("--model", action="append", help="model directory; repeat to compare (default: the bundled one)")
    p.add_argument("--tweets", type=int, default=2000, help="tweets per timed pass (from the test split)")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated engines; fp32 comes first")
    p.add_argument("--batch-size", type=int, default=load_config().service.inference_batch)
    p.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch intra-op threads")
    args = p.parse_args(argv)
    setup_logging()
    torch.set_num_threads(args.threads)
    precisions = ["fp32"] + [x for x in args.precisions.split(",") if x and x != "fp32"]
    models = args.model or [str(DEFAULT_MODEL_DIR)]
    split = load_split(default_training_files())
    timed = split.texts["test"][: args.tweets]
    val_texts, val_labels = split.texts["val"], np.array(split.labels["val"])
    base_rate = base_accuracy = None
    print(
        f"{len(timed)} test tweets per timed pass, batches of {args.batch_size}, {args.threads} thread(s); "
        f"accuracy on {len(val_texts)} validation rows",
        flush=True,
    )
    print(f"{'model':<28}{'engine':<13}{'ready s':>8}{'tweets/s':>10}{'x fp32':>8}{'val acc %':>10}{'Δ points':>10}")
    for model, precision in ((m, p) for m in models for p in precisions):
        started = time.perf_counter()
        predictor = SentimentPredictor.from_pretrained(model, batch_size=args.batch_size, precision=precision)
        predictor.warm_up()
        ready = time.perf_counter() - started
        rates = []
        for _ in range(3):
            t0 = time.perf_counter()
            predictor.predict_proba(timed)
            rates.append(len(timed) / (time.perf_counter() - t0))
        accuracy = 100 * float(((predictor.predict_proba(val_texts) > 0.5) == val_labels).mean())
        rate = statistics.median(rates)
        base_rate, base_accuracy = base_rate or rate, base_accuracy if base_accuracy is not None else accuracy
        print(
            f"{model[-27:]:<28}{precision:<13}{ready:>8.1f}{rate:>10.1f}{rate / base_rate:>8.2f}{accuracy:>10.2f}"
            f"{accuracy - base_accuracy:>+10.2f}",
            flush=True,
        )
        del predictor
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
