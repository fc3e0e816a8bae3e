"""Train and evaluate every model family on one split and write one comparison.

Usage: python -m experiments.compare [--profile smoke|quick|full] [--models logreg,gru,...]
       [--data FILE ...] [--test-file FILE] [--tweeteval FILE] [--curve] [--out DIR]
       python -m experiments.compare --plot-curve RESULTS_DIR ... (one curve from earlier runs)

Families: TF-IDF logistic regression, linear SVC (calibrated) and multinomial naive Bayes; GRU and
LSTM (Keras); the BERT-family fine-tune (the same code that trains the served model). Each run
writes a new timestamped folder with results.csv, results.json, results.md (beside the reference
article's figures), accuracy_throughput.png, confusion matrices and the trained models.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np

from experiments import evaluation
from experiments.compare_report import REFERENCE, write_results
from experiments.data import (
    SEED,
    SEMEVAL_FILE,
    Split,
    SplitSpec,
    default_data_dir,
    default_training_files,
    load_split,
    load_three_class_split,
    shared_file,
)
from experiments.family import ALL_MODELS, Family, FitConfig, get_family
from experiments.plots import plot_confusion, plot_learning_curve
from sentiment.labels import NeutralBand
from sentiment.logs import setup_logging

log = logging.getLogger("experiments.compare")

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Accuracy (%) on a Sentiment140 validation split, as reported by the reference article.
CURVE_FRACTIONS = (0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True)
class Profile:
    train_rows: int | None
    val_rows: int | None
    test_rows: int | None
    rnn_epochs: int
    bert_epochs: float
    bert_max_train_rows: int | None = None


PROFILES = {
    "smoke": Profile(
        train_rows=3000, val_rows=500, test_rows=1000, rnn_epochs=1, bert_epochs=1.0, bert_max_train_rows=1500
    ),
    "quick": Profile(
        train_rows=30_000, val_rows=3000, test_rows=6000, rnn_epochs=4, bert_epochs=1.0, bert_max_train_rows=10_000
    ),
    "full": Profile(train_rows=None, val_rows=None, test_rows=None, rnn_epochs=8, bert_epochs=1.5),
}


def subsample(split: Split, profile: Profile, seed: int, train_fraction: float = 1.0) -> Split:
    """Take the profile's number of rows from each part, uniformly at random."""
    rng = random.Random(seed)
    texts, labels = {}, {}
    for part, limit in (("train", profile.train_rows), ("val", profile.val_rows), ("test", profile.test_rows)):
        idx = list(range(len(split.texts[part])))
        rng.shuffle(idx)
        if limit is not None:
            idx = idx[:limit]
        if part == "train":
            idx = idx[: max(1, int(len(idx) * train_fraction))]
        texts[part] = [split.texts[part][i] for i in idx]
        labels[part] = [split.labels[part][i] for i in idx]
    return Split(texts, labels, split.spec, split.classes)


@dataclass
class Trained:
    """A fitted model: a function from texts to positive-probabilities, its files and training time."""

    predict: Callable[[list[str]], np.ndarray]
    paths: list[Path]
    train_seconds: float
    notes: str = ""


def train_family(family: Family, split: Split, config: FitConfig, models_dir: Path) -> Trained:
    """Fit one family on the split, save it under ``models_dir`` and time both."""
    started = time.monotonic()
    fitted = family.fit(split, config)
    paths = family.save(fitted, models_dir)
    seconds = time.monotonic() - started
    if fitted.recorded_train_seconds is not None:
        seconds = fitted.recorded_train_seconds
    return Trained(partial(family.predict, fitted), paths, seconds, fitted.notes)


def evaluate_family(
    name: str, trained: Trained, split: Split, three_class: dict[str, tuple], band: NeutralBand, out: Path
) -> dict:
    test_texts = split.texts["test"]
    started = time.monotonic()
    probs = np.asarray(trained.predict(test_texts))
    throughput = len(test_texts) / (time.monotonic() - started)
    row = {
        "model": name,
        **evaluation.binary_metrics(probs, split.labels["test"]),
        "train_seconds": round(trained.train_seconds, 1),
        "tweets_per_second": round(throughput, 1),
        "size_mb": evaluation.folder_size_mb(trained.paths),
        "reference_accuracy": REFERENCE.get(name),
        "notes": trained.notes,
    }
    val_probs = np.asarray(trained.predict(split.texts["val"]))
    temperature = evaluation.fit_temperature(val_probs, split.labels["val"])
    row["temperature"] = round(temperature, 3)
    for set_name, (texts, labels) in three_class.items():
        p = np.asarray(trained.predict(texts))
        for key, value in evaluation.three_class_metrics(p, labels, band).items():
            row[f"{set_name}_{key}"] = value
        calibrated = evaluation.apply_temperature(p, temperature)
        for key, value in evaluation.three_class_metrics(calibrated, labels, band).items():
            row[f"{set_name}_calibrated_{key}"] = value
        plot_confusion(
            evaluation.confusion(p, labels, band), f"{name} on {set_name}", out / f"confusion_{name}_{set_name}.png"
        )
    return row


def run(
    models: list[str],
    profile_name: str,
    files: list[Path],
    three_class_files: dict[str, Path],
    out_root: Path,
    seed: int = SEED,
    train_fraction: float = 1.0,
    band: NeutralBand = NeutralBand(),
    bert_model: Path | None = None,
    recipe: str = "tuned",
    rnn_recipe: str | None = None,
    three_class_train: Path | None = None,
) -> Path:
    """Train and evaluate ``models`` on Sentiment140 (binary), and on ``three_class_train`` when
    given (three classes, :mod:`experiments.three_class`); return the results folder."""
    profile = PROFILES[profile_name]
    out = _results_folder(out_root, profile_name)
    spec = SplitSpec(seed=seed)
    split = subsample(load_split(files, spec), profile, seed, train_fraction)
    info = {
        "profile": profile_name,
        "profile_settings": asdict(profile),
        "files": [str(f) for f in files],
        "split": split.describe(),
        "train_fraction": train_fraction,
        "seed": seed,
        "band": band.to_dict(),
        "recipe": recipe,
        "rnn_recipe": rnn_recipe,
    }
    print(f"compare: profile {profile_name}, split {info['split']}", flush=True)
    (out / "split.json").write_text(json.dumps(info, indent=2) + "\n")
    three_class = {name: evaluation.read_three_class(path) for name, path in three_class_files.items()}
    config = FitConfig(
        seed=seed,
        recipe=recipe,
        rnn_recipe=rnn_recipe,
        rnn_epochs=profile.rnn_epochs,
        bert_epochs=profile.bert_epochs,
        bert_max_train_rows=profile.bert_max_train_rows,
        bert_model=bert_model,
        work_dir=out / "models",
    )
    rows = []
    for name in models:
        print(f"compare: training {name}", flush=True)
        trained = train_family(get_family(name), split, config, out / "models")
        row = evaluate_family(name, trained, split, three_class, band, out)
        rows.append(row)
        print(
            f"compare: {name}: accuracy {row['accuracy']:.4f}, {row['tweets_per_second']:.0f} tweets/s, "
            f"trained in {row['train_seconds']:.0f}s",
            flush=True,
        )
        write_results(out, rows, info, list(three_class))
    if three_class_train is not None:
        rows3 = compare_three_class(models, three_class_train, three_class, profile, config, bert_model, out)
        write_results(out, rows, info, list(three_class), rows3)
    return out


def _results_folder(out_root: Path, profile_name: str) -> Path:
    """A new folder named by the time and the profile (with a suffix if one run already took the name)."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = out_root / f"{stamp}-{profile_name}"
    suffix = 1
    while out.exists():
        out = out_root / f"{stamp}-{profile_name}-{suffix}"
        suffix += 1
    out.mkdir(parents=True)
    return out


def compare_three_class(
    models: list[str],
    train_file: Path,
    eval_files: dict[str, tuple],
    profile: Profile,
    config: FitConfig,
    bert_model: Path | None,
    out: Path,
) -> tuple[list[dict], list[str]]:
    """The three-class table's rows and the names of its evaluation sets."""
    from experiments.three_class import EvalSet, run_three_class
    from model_api.model.predictor import FAST_MODEL_DIR, FULL_MODEL_DIR
    from sentiment.labels import LABELS

    split = subsample(load_three_class_split(train_file, config_spec(config)), profile, config.seed)
    sets = [EvalSet(name, texts, [LABELS.index(y) for y in labels]) for name, (texts, labels) in eval_files.items()]
    if not sets or sets[0].name != "tweeteval":
        sets.insert(0, EvalSet("own_val", split.texts["val"], split.labels["val"]))
    sets.insert(1, EvalSet("semeval_test", split.texts["test"], split.labels["test"]))
    bert_dirs = [bert_model] if bert_model else [FULL_MODEL_DIR, FAST_MODEL_DIR]
    print(f"compare: three classes from {train_file}, split {split.sizes()}", flush=True)
    return run_three_class(models, split, config, sets, bert_dirs, out), [s.name for s in sets]


def config_spec(config: FitConfig) -> SplitSpec:
    return SplitSpec(seed=config.seed)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.compare", description=__doc__.split("\n")[0])
    p.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    p.add_argument("--models", default=",".join(ALL_MODELS), help=f"comma-separated subset of {','.join(ALL_MODELS)}")
    p.add_argument("--data", nargs="+", type=Path, help="Sentiment140 files (default: the shared data)")
    p.add_argument("--test-file", type=Path, help="three-class file in the Sentiment140 format (polarity 0, 2, 4)")
    p.add_argument("--tweeteval", type=Path, help="TweetEval label,text file (default: the shared dev set)")
    p.add_argument(
        "--three-class",
        default="auto",
        help="three-class label,text training file for the three-class table "
        "('auto': the shared SemEval file when present; 'none': no three-class table)",
    )
    p.add_argument("--train-fraction", type=float, default=1.0, help="train on this fraction of the training rows")
    p.add_argument("--curve", action="store_true", help=f"learning curve: train on {CURVE_FRACTIONS} of the rows")
    p.add_argument(
        "--plot-curve",
        nargs="+",
        type=Path,
        metavar="RESULTS_DIR",
        help="only plot a learning curve from earlier results folders (any families and fractions)",
    )
    p.add_argument("--seed", type=int, default=SEED)
    p.add_argument(
        "--recipe",
        choices=("tuned", "reference"),
        default="tuned",
        help="reference: the article's recipes (plain TF-IDF; word-level RNNs); tuned: ours (default)",
    )
    p.add_argument(
        "--rnn-recipe",
        help="one of experiments.rnn.RECIPES for the GRU/LSTM rows (reference, regularised, wordpiece, bert-init)",
    )
    p.add_argument(
        "--bert-model",
        type=Path,
        help="evaluate this model directory (written by experiments.train_bert "
        "on the same split) instead of training the BERT row again",
    )
    p.add_argument("--out", type=Path, default=RESULTS_DIR, help="where the timestamped results folder goes")
    return p


def _check_options(args: argparse.Namespace, models: list[str]) -> None:
    """Raises ValueError, naming the option, for a model, recipe or fraction the run cannot take."""
    unknown = sorted(set(models) - set(ALL_MODELS))
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown}; choose from {','.join(ALL_MODELS)}")
    from experiments.rnn import RECIPES

    if args.rnn_recipe and args.rnn_recipe not in RECIPES:
        raise ValueError(f"unknown --rnn-recipe {args.rnn_recipe!r}; choose from {','.join(RECIPES)}")
    if not 0 < args.train_fraction <= 1:
        raise ValueError(f"--train-fraction must be in (0, 1], got {args.train_fraction}")


def _input_files(args: argparse.Namespace) -> tuple[list[Path], dict[str, Path], Path | None]:
    """The Sentiment140 files, the three-class evaluation files by name and the three-class training
    file (or None).

    Raises:
        FileNotFoundError: one of them is not there.
    """
    files = args.data or default_training_files()
    three_class: dict[str, Path] = {}
    tweeteval = args.tweeteval or (default_data_dir() / "tweeteval" / "val.csv" if default_data_dir() else None)
    if tweeteval and tweeteval.is_file():
        three_class["tweeteval"] = tweeteval
    if args.test_file:
        three_class["testfile"] = args.test_file
    three_class_train = None if args.three_class == "none" else shared_file(SEMEVAL_FILE)
    if args.three_class not in ("auto", "none"):
        three_class_train = Path(args.three_class)
    for f in files + list(three_class.values()) + ([three_class_train] if three_class_train else []):
        if not Path(f).is_file():
            raise FileNotFoundError(f"no such file: {f}")
    return files, three_class, three_class_train


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.plot_curve:
        missing = [str(d) for d in args.plot_curve if not (d / "results.json").is_file()]
        if missing:
            print(f"error: no results.json in {', '.join(missing)}", file=sys.stderr)
            return 2
        plot_learning_curve([json.loads((d / "results.json").read_text()) for d in args.plot_curve], args.out)
        return 0
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    try:
        _check_options(args, models)
        files, three_class, three_class_train = _input_files(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2

    def run_on(fraction: float) -> Path:
        return run(
            models,
            args.profile,
            files,
            three_class,
            args.out,
            args.seed,
            fraction,
            bert_model=args.bert_model,
            recipe=args.recipe,
            rnn_recipe=args.rnn_recipe,
            three_class_train=None if args.curve else three_class_train,
        )

    if args.curve:
        plot_learning_curve([json.loads((run_on(f) / "results.json").read_text()) for f in CURVE_FRACTIONS], args.out)
        return 0
    out = run_on(args.train_fraction)
    print(f"compare: results in {out}\n")
    print((out / "results.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
