"""Build (or find) the compiled engine of a model in the engine cache (:mod:`model_api.model.engine_cache`).

Usage: python -m model_api.build_engine --model DIR --precision int8-static [--cache DIR] [--no-pack]

The service runs this in a background process when ``service.engine_cache`` is set and an entry is
missing; it can also be run ahead of time, e.g. when building a container image.
"""

from __future__ import annotations

import argparse

from model_api.model.engine_cache import cache_dir
from sentiment.logs import setup_logging


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m model_api.build_engine", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model directory or hub name")
    parser.add_argument("--precision", default="int8-static", choices=("int8-static", "int8-dynamic"))
    parser.add_argument("--cache", default="", help="cache folder (default ~/.cache/tweet-sentiment/engines)")
    parser.add_argument("--batch-size", type=int, default=64, help="rows per calibration pass")
    parser.add_argument("--no-pack", action="store_true", help="padded rows, one text each")
    args = parser.parse_args(argv)
    setup_logging()
    from model_api.model.predictor import SentimentPredictor
    from model_api.model.torch_setup import quiet_torch_logs

    quiet_torch_logs()
    predictor = SentimentPredictor.from_pretrained(
        args.model,
        batch_size=args.batch_size,
        precision=args.precision,
        pack=not args.no_pack,
        engine_cache=str(cache_dir(args.cache)),
        fast_start=False,
    )
    print(predictor.describe()["engine"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
