"""How well labels generalise: any model directory, the TF-IDF baseline and blends of them, on the
sets that predict held-out figures.

Usage: python -m experiments.evaluate --model DIR [--model DIR ...] [--blend DIR+logreg ...]
       [--test-file FILE ...] [--max-rows N] [--out DIR]

Every row is read as served: the class probabilities give ``p_positive = P(positive) + P(neutral)
/ 2``, the probability map (a model directory's own; for the baseline and blends, one fitted
without labels by :func:`experiments.calibration.agreement_map`; for the baseline, the map
:mod:`experiments.compare` fits on TweetEval val) and the band (0.4-0.6) give the
label. The columns, per set, are macro-F1, macro-recall and the per-class F1:

* ``tweeteval_val``: TweetEval's validation split, drawn from the same 2013-2016 collections as
  the training data (in-distribution; many models were chosen on it);
* ``semeval_topic``: the SemEval tweets of topics held out of every training split
  (:mod:`experiments.topics`);
* ``gop``, ``apple``, ``coachella``: the out-of-domain sets of ``ood/``. Choices (checkpoints,
  blends, recipes) are made on the mean of ``gop`` and ``apple`` (:data:`SELECTION_SETS`);
  ``coachella`` is kept out of every choice as the final check;
* any ``--test-file`` (``label,text`` or Sentiment140 format with polarity 0/2/4);
* ``sentiment140``: binary accuracy (``p_positive > 0.5``) on Sentiment140's held-out split.

Class probabilities are cached per model version and set under ``--out``, so a blend or a rerun
scores nothing twice.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from experiments.calibration import CLASS_ORDER, agreement_map, band_classes, fit_map
from experiments.data import (
    SEMEVAL_FILE,
    SplitSpec,
    default_data_dir,
    load_split,
    load_three_class_split,
    read_three_class,
    shared_file,
)
from experiments.scorers import Scorer, baseline_scorer, blend_scorer, model_scorer
from experiments.three_class import EvalSet, three_class_scores
from sentiment.labels import BAND_HIGH, BAND_LOW, ProbabilityMap
from sentiment.logs import setup_logging

log = logging.getLogger("experiments.evaluate")

OOD_SETS = {"gop": "gop_debate_2015.csv", "apple": "apple_2014.csv", "coachella": "coachella_2015.csv"}
# The out-of-domain sets every choice is made on; the others stay out of every choice.
SELECTION_SETS = ("gop", "apple")
FINAL_CHECK = "coachella"


def standard_sets(
    data_dir: Path | None, extra: Sequence[Path] = (), max_rows: int | None = None, seed: int = 13
) -> list[EvalSet]:
    """The three-class sets found under ``data_dir`` and the ``extra`` files, each cut to a seeded
    sample of ``max_rows`` when given."""
    sets: list[EvalSet] = []
    if data_dir is not None:
        val = data_dir / "tweeteval" / "val.csv"
        if val.is_file():
            sets.append(EvalSet("tweeteval_val", *read_three_class(val)))
        semeval = data_dir / SEMEVAL_FILE
        if semeval.is_file():
            split = load_three_class_split(semeval, SplitSpec(seed=seed))
            sets.append(EvalSet("semeval_topic", split.texts["topic"], split.labels["topic"]))
        for name, file in OOD_SETS.items():
            if (data_dir / "ood" / file).is_file():
                sets.append(EvalSet(name, *read_three_class(data_dir / "ood" / file)))
    sets += [EvalSet(Path(f).stem, *read_three_class(Path(f))) for f in extra]
    return [_sample(s, max_rows, seed) for s in sets]


def _sample(s: EvalSet, max_rows: int | None, seed: int) -> EvalSet:
    if not max_rows or len(s.texts) <= max_rows:
        return s
    keep = np.sort(np.random.default_rng(seed).choice(len(s.texts), max_rows, replace=False))
    return EvalSet(s.name, [s.texts[i] for i in keep], [s.labels[i] for i in keep])


def binary_test(files: Sequence[Path], max_rows: int | None, seed: int = 13) -> tuple[list[str], list[int]]:
    """Sentiment140's held-out test split (the hash split every training run keeps out)."""
    split = load_split(list(files), SplitSpec(seed=seed))
    texts, labels = split.texts["test"], split.labels["test"]
    return (texts[:max_rows], labels[:max_rows]) if max_rows else (texts, labels)


class ProbaCache:
    """Class probabilities per (model key, set), in ``folder/cache``, so nothing is scored twice."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = None if folder is None else folder / "cache"

    def get(self, scorer: Scorer, name: str, texts: Sequence[str]) -> np.ndarray:
        if scorer.parts:
            return sum(w * self.get(part, name, texts) for part, w in scorer.parts)
        digest = hashlib.blake2b("\x00".join(texts).encode(), digest_size=8).hexdigest()
        path = None if self.folder is None else self.folder / f"{scorer.key}-{name}-{digest}.npy"
        if path is not None and path.is_file():
            return np.load(path)
        started = time.monotonic()
        probs = np.asarray(scorer.class_proba(list(texts)), dtype=np.float64)
        log.info("%s on %s: %d tweets in %.1f s", scorer.name, name, len(texts), time.monotonic() - started)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, probs)
        return probs


def served_classes(probs: np.ndarray, probability_map: ProbabilityMap) -> np.ndarray:
    """The label the service gives: the mapped positive-probability in the band."""
    return band_classes(probability_map(CLASS_ORDER.positive_probability(probs)), BAND_LOW, BAND_HIGH)


def evaluate_row(
    scorer: Scorer, sets: list[EvalSet], binary: tuple[list[str], list[int]] | None, cache: ProbaCache
) -> dict:
    """One row: per set, the scores of the served labels, and how often the served label is the
    most likely class; the out-of-domain means; Sentiment140's binary accuracy. A row without a
    probability map of its own gets one fitted on the first set: by default
    :func:`experiments.calibration.agreement_map` of its probabilities (the labels unread)."""
    mapping = scorer.probability_map
    if mapping is None:  # fitted on the first set's texts (TweetEval val's)
        probs = cache.get(scorer, sets[0].name, sets[0].texts)
        if scorer.map_fit == "labels":
            mapping = ProbabilityMap(fit_map(CLASS_ORDER.positive_probability(probs), np.asarray(sets[0].labels))[0])
        else:
            mapping = agreement_map(probs)
    row: dict = {"model": scorer.name, "map": [list(k) for k in mapping.knots]}
    agree, total = 0, 0
    for s in sets:
        probs = cache.get(scorer, s.name, s.texts)
        served = served_classes(probs, mapping)
        agree, total = agree + int((served == probs.argmax(1)).sum()), total + len(served)
        row.update({f"{s.name}_{k}": round(v, 4) for k, v in three_class_scores(np.asarray(s.labels), served).items()})
    row["served_is_most_likely"] = round(agree / max(total, 1), 4)
    chosen = [row[f"{n}_macro_f1"] for n in SELECTION_SETS if f"{n}_macro_f1" in row]
    every = [row[f"{n}_macro_f1"] for n in OOD_SETS if f"{n}_macro_f1" in row]
    row["selection_mean_macro_f1"] = round(float(np.mean(chosen)), 4) if chosen else None
    row["ood_mean_macro_f1"] = round(float(np.mean(every)), 4) if every else None
    if binary is not None:
        p = mapping(CLASS_ORDER.positive_probability(cache.get(scorer, "sentiment140_test", binary[0])))
        row["sentiment140_accuracy"] = round(float(((p > 0.5) == (np.asarray(binary[1]) == 1)).mean()), 4)
    return row


def markdown_table(rows: list[dict], sets: list[str]) -> str:
    """Macro-F1 per set (macro-recall in brackets), the out-of-domain mean and Sentiment140's accuracy."""
    head = ["model", *sets, "ood mean", "Sentiment140 acc", "served = most likely"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in rows:
        cells = [r["model"]]
        cells += [f"{r[f'{s}_macro_f1']:.3f} ({r[f'{s}_macro_recall']:.3f})" for s in sets]
        cells.append("" if r.get("ood_mean_macro_f1") is None else f"{r['ood_mean_macro_f1']:.3f}")
        acc = r.get("sentiment140_accuracy")
        cells.append("" if acc is None else f"{100 * acc:.2f}%")
        cells.append(f"{100 * r['served_is_most_likely']:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def per_class_table(rows: list[dict], sets: list[str]) -> str:
    """Per set, the F1 of each class (negative / neutral / positive)."""
    head = ["model", *sets]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * len(sets)]
    for r in rows:
        cells = [r["model"]] + [
            "/".join(f"{r[f'{s}_f1_{c}']:.2f}" for c in ("negative", "neutral", "positive")) for s in sets
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--model", action="append", default=[], help="a model directory or hub name (repeat for more)")
    p.add_argument(
        "--baseline",
        default="auto",
        help="the TF-IDF logistic regression: a .joblib pipeline, 'auto' (trained on the three-class training "
        "split, about a minute, kept under --out) or 'none'",
    )
    p.add_argument(
        "--blend",
        action="append",
        default=[],
        help="models whose class probabilities are averaged, joined by '+' ('logreg' is the baseline); "
        "a weight after '@' (DIR@0.7+logreg@0.3)",
    )
    p.add_argument("--test-file", action="append", default=[], type=Path, help="another three-class test file")
    p.add_argument("--data-dir", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--max-rows", type=int, default=None, help="a seeded sample of at most N rows per set")
    p.add_argument("--precision", default="fp32", help="the engine that scores model directories (as served: fp32)")
    p.add_argument("--out", type=Path, default=Path("output/evaluation"), help="folder of the results and the cache")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    data_dir = args.data_dir or default_data_dir()
    sets = standard_sets(data_dir, args.test_file, args.max_rows)
    if not sets:
        raise SystemExit("no evaluation set: pass --data-dir (the shared data folder) or --test-file FILE")
    s140 = [data_dir / "sentiment140" / n for n in ("train_full_rows.csv", "train_text_only.csv")] if data_dir else []
    binary = binary_test(s140, args.max_rows) if s140 and all(f.is_file() for f in s140) else None
    scorers: dict[str, Scorer] = {}
    if args.baseline != "none":
        scorers["logreg"] = baseline_scorer(args.baseline, args.out, shared_file(SEMEVAL_FILE))
    for folder in args.model:
        scorer = model_scorer(folder, args.precision)
        scorers[scorer.name] = scorer
    for spec in args.blend:
        scorer = blend_scorer(spec, scorers, args.precision)
        scorers[scorer.name] = scorer
    cache = ProbaCache(args.out)
    rows = [evaluate_row(s, sets, binary, cache) for s in scorers.values()]
    names = [s.name for s in sets]
    table = markdown_table(rows, names) + "\n\nF1 negative / neutral / positive:\n\n" + per_class_table(rows, names)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "evaluation.json").write_text(json.dumps(rows, indent=2) + "\n")
    (args.out / "evaluation.md").write_text(table + "\n")
    print(table)
    print(f"\nchoices on the mean of {', '.join(SELECTION_SETS)}; {FINAL_CHECK} is the final check. In {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
