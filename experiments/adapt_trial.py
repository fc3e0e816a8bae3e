"""How much adapting to a keyword buys: a person's labels simulated from a labelled set.

Usage: python -m experiments.adapt_trial --set ../shared/data/ood/gop_debate_2015.csv --base models/default
       [--labels 300] [--draw random|page] [--work DIR] [--repeat N] [--epochs N] [--lr LR] [--band-only]

Draws ``--labels`` tweets of the set at random (as a person labelling the dashboard's random draws
would) or, with ``--draw page``, as the labelling page draws them (mostly the base model's least
sure), writes them to a labels table under ``--work`` as that person's labels of keyword
``trial``, runs :func:`experiments.adapt.adapt` on them, and scores the base and the adapted model,
as served, on **the rest of the set** (the tweets no label came from), beside adapt's own figures on
the standard evaluation. Prints one JSON object; nothing is written outside ``--work``.
``--band-only`` adapts nothing but the neutral band: the raw edges that score the drawn labels best
(:func:`experiments.calibration.best_edges`), judged on the rest of the set beside the base's.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.adapt import AdaptConfig, BadInput, Refused, adapt
from experiments.data import CLASSES, read_three_class
from sentiment.labelled import RANDOM, LabelsTable, draw_tweets
from sentiment.labels import BAND_HIGH, BAND_LOW
from sentiment.logs import setup_logging

log = logging.getLogger("experiments.adapt_trial")
KEYWORD = "trial"


def served_positive(scorer, texts: list[str]) -> np.ndarray:
    """The positive-probability the service would serve for each text (the scorer's map applied)."""
    from experiments.calibration import CLASS_ORDER

    return scorer.probability_map(CLASS_ORDER.positive_probability(np.asarray(scorer.class_proba(texts))))


def drawn_as_the_page_draws(p_positive: np.ndarray, count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """The indices of ``count`` tweets drawn as the labelling page draws them from the base's served
    scores ``p_positive`` (:func:`sentiment.labelled.draw_tweets`: about a third at random, the rest
    the least sure), and how each was drawn."""
    tweets = pd.DataFrame({"id": [str(i) for i in range(len(p_positive))], "p_positive": p_positive})
    drawn = draw_tweets(tweets, [], count, seed=seed)
    return drawn["id"].astype(int).to_numpy(), drawn["drawn"].tolist()


def simulated_labels(
    texts: list[str], labels: list[int], count: int, seed: int, base_p: np.ndarray | None = None
) -> tuple[pd.DataFrame, np.ndarray]:
    """``count`` rows drawn as a person's labels, at random or (with ``base_p``, the base model's
    served scores of ``texts``) as the labelling page draws them; the indices of the rest."""
    if count >= len(texts):
        raise ValueError(f"--labels {count} leaves none of the set's {len(texts)} tweets to judge by")
    if base_p is None:
        chosen = np.random.default_rng(seed).permutation(len(texts))[:count]
        how = [RANDOM] * count
    else:
        chosen, how = drawn_as_the_page_draws(base_p, count, seed)
    rest = np.setdiff1d(np.arange(len(texts)), chosen)
    rows = pd.DataFrame(
        {
            "id": [str(i) for i in chosen],
            "keyword": KEYWORD,
            "text": [texts[i] for i in chosen],
            "label": [CLASSES[labels[i]].capitalize() for i in chosen],
            "model_version": "",
            "p_positive": np.nan,
            "sentiment": "",
            "drawn": how,
        }
    )
    return rows, rest


def rest_scores(labels: list[int], p_positive: np.ndarray) -> dict:
    """Macro-F1 (and macro-recall) of the labels served from ``p_positive`` (the neutral band)."""
    from experiments.calibration import band_classes
    from experiments.three_class import three_class_scores

    scores = three_class_scores(np.asarray(labels), band_classes(p_positive, BAND_LOW, BAND_HIGH))
    return {k: round(v, 4) for k, v in scores.items() if k in ("macro_f1", "macro_recall")}


def band_only(raw: np.ndarray, labels: list[int], chosen: np.ndarray, rest: np.ndarray) -> dict:
    """The base model with only its band's edges refitted on the chosen tweets' labels (``raw``: its
    positive-probabilities before the map), scored on the rest."""
    from experiments.calibration import band_classes, best_edges
    from experiments.three_class import three_class_scores

    low, high, _ = best_edges(raw[chosen], np.asarray(labels)[chosen])
    served = three_class_scores(np.asarray(labels)[rest], band_classes(raw[rest], low, high))
    return {
        "raw_edges": [round(low, 4), round(high, 4)],
        **{k: round(served[k], 4) for k in ("macro_f1", "macro_recall")},
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.adapt_trial", description=__doc__.splitlines()[0])
    p.add_argument("--set", type=Path, required=True, help="a label,text file (negative/neutral/positive)")
    p.add_argument("--base", required=True, help="the model directory to adapt")
    p.add_argument("--labels", type=int, default=300, help="labels drawn from the set (default: 300)")
    p.add_argument("--work", type=Path, default=None, help="folder of the labels and the adapted model (kept)")
    p.add_argument(
        "--draw",
        choices=("random", "page"),
        default="random",
        help="which tweets become labels: at random, or as the labelling page draws them (mostly the "
        "base's least sure, a third at random) (default: random)",
    )
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--check-rows", type=int, default=1000, help="rows of each standard set adapt scores")
    p.add_argument("--data-dir", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--repeat", type=int, default=AdaptConfig.repeat, help="as adapt's --repeat")
    p.add_argument("--epochs", type=float, default=AdaptConfig.epochs, help="as adapt's --epochs")
    p.add_argument("--lr", type=float, default=AdaptConfig.lr, help="as adapt's --lr")
    p.add_argument("--band-only", action="store_true", help="refit only the band's edges on the labels; no training")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from experiments.calibration import CLASS_ORDER
    from experiments.scorers import model_scorer

    texts, labels = read_three_class(args.set)
    base = model_scorer(args.base)
    raw = CLASS_ORDER.positive_probability(np.asarray(base.class_proba(texts)))  # scored once, read by all
    base_p = base.probability_map(raw)
    rows, rest = simulated_labels(texts, labels, args.labels, args.seed, base_p if args.draw == "page" else None)
    if args.band_only:
        chosen = rows["id"].astype(int).to_numpy()
        rest_labels = [labels[i] for i in rest]
        report = {
            "set": str(args.set),
            "labels": len(chosen),
            "tweets": len(rest),
            "base": rest_scores(rest_labels, base_p[rest]),
            "band_refit": band_only(raw, labels, chosen, rest),
        }
        print(json.dumps(report, indent=2))
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="adapt-trial-"))
    LabelsTable(work / "labels").append(rows.to_dict("records"))
    out = work / "adapted"
    shutil.rmtree(out, ignore_errors=True)
    config = AdaptConfig(
        labels=work / "labels",
        keyword=KEYWORD,
        base=args.base,
        out=out,
        check_rows=args.check_rows or None,
        data_dir=args.data_dir,
        seed=args.seed,
        force=True,  # a trial reports every figure, and what adapt would have refused
        repeat=args.repeat,
        epochs=args.epochs,
        lr=args.lr,
    )
    try:
        report = adapt(config, ["--labels", str(work / "labels"), "--keyword", KEYWORD, "--base", args.base])
    except (BadInput, Refused) as e:
        log.error("%s", e)
        return 1
    rest_texts, rest_labels = [texts[i] for i in rest], [labels[i] for i in rest]
    report["rest_of_set"] = {
        "set": str(args.set),
        "tweets": len(rest_texts),
        "base": rest_scores(rest_labels, base_p[rest]),
        "adapted": rest_scores(rest_labels, served_positive(model_scorer(str(out)), rest_texts)),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
