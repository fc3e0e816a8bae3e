"""Adapt a served model to one keyword from people's labels, and keep it only if it is better there.

Usage: python -m experiments.adapt --labels OUTPUT/labels --keyword K --base MODEL_DIR --out DIR
       [--holdout 0.3] [--min-labels 60] [--tolerance 0.02] [--original-rows 2000] [--repeat 8]
       [--epochs 1] [--lr 3e-5] [--check-rows 1000] [--data-dir ../shared/data]

1. Reads the keyword's labels from the labels table (:mod:`sentiment.labelled`; skips left out)
   and keeps ``--holdout`` of them apart (stratified, seeded), never trained on.
2. Fine-tunes the base model on the rest, each repeated ``--repeat`` times (a person's label as a
   target smoothed by ``--smoothing``), mixed with ``--original-rows`` tweets of the three-class
   training split and ``--sentiment140-rows`` Sentiment140 texts, whose targets are the base
   model's own probabilities: it learns the keyword and stays itself elsewhere (distillation from
   itself; the fit loop is :func:`experiments.bert_fit.fine_tune`'s, with its progress bar). The new model's probability
   map is fitted without labels (:func:`experiments.calibration.calibrate_by_agreement`).
3. Scores the base and the adapted model, as served (the band on the mapped positive-probability),
   on the held-out labels and on the standard evaluation (:mod:`experiments.evaluate`: TweetEval
   val, the held-out SemEval topics, the ``ood/`` sets, Sentiment140's binary accuracy; seeded
   samples of ``--check-rows``).
4. Writes ``DIR`` (weights, ``tweet_sentiment.json``, ``adapt.json`` and a model card with the
   figures and the command) only if the adapted model's macro-F1 on the held-out labels is above
   the base's and no standard figure is more than ``--tolerance`` below the base's; otherwise it
   writes nothing and says which figure failed (exit 1). Bad input (too few labels, one class, no
   labels for the keyword, a base model that cannot be read, a ``DIR`` that exists or that another
   adapt is writing) is refused before any training (exit 2).

Roll the new model out with ``POST /admin/model`` or ``python -m model_api.rollout --model DIR``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass, fields, replace
from pathlib import Path

import numpy as np

from experiments.adapt_judge import card, judge, verdict
from experiments.calibration import calibrate_by_agreement
from experiments.data import CLASSES, SEMEVAL_FILE, SplitSpec, default_data_dir, load_split, load_three_class_split
from experiments.soft_labels import write_soft_labels
from sentiment.labelled import SKIP, LabelsTable
from sentiment.logs import setup_logging
from sentiment.model_dir import read_model_info, write_model_info

log = logging.getLogger("experiments.adapt")


class Refused(Exception):
    """The adapted model is not written: the message says why."""


class BadInput(Exception):
    """The input cannot be adapted on: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class AdaptConfig:
    labels: Path
    keyword: str
    base: str
    out: Path
    holdout: float = 0.3
    min_labels: int = 60
    tolerance: float = 0.02
    original_rows: int = 2000
    sentiment140_rows: int = 1000
    repeat: int = 8
    smoothing: float = 0.1
    epochs: float = 1.0
    lr: float = 3e-5
    batch_size: int = 16
    check_rows: int | None = 1000
    data_dir: Path | None = None
    seed: int = 13
    force: bool = False  # write the model even when a figure failed (adapt.json and the card say which)


@dataclass(frozen=True)
class UserLabels:
    train_texts: list[str]
    train_labels: list[int]
    holdout_texts: list[str]
    holdout_labels: list[int]


def read_user_labels(config: AdaptConfig) -> UserLabels:
    """The keyword's labels, split into training and held-out rows (stratified by label, seeded).

    Raises:
        BadInput: no labels for the keyword, fewer than ``min_labels``, or a single class.
    """
    table = LabelsTable(config.labels)
    every = table.read()
    if every.empty:
        raise BadInput(f"no labels in {config.labels}: label tweets in the dashboard's labelling page first")
    rows = every[(every["keyword"].fillna("") == config.keyword) & (every["label"] != SKIP)]
    if rows.empty:
        known = sorted(every["keyword"].fillna("(no keyword)").unique())
        raise BadInput(f"no labels for keyword {config.keyword!r} in {config.labels}; labelled keywords: {known}")
    if len(rows) < config.min_labels:
        raise BadInput(
            f"{len(rows)} labels for {config.keyword!r}, fewer than --min-labels {config.min_labels}: "
            "label more tweets (a few hundred adapt well) or lower --min-labels"
        )
    classes = sorted(rows["label"].unique())
    if len(classes) < 2:
        raise BadInput(f"every label for {config.keyword!r} is {classes[0]}: a model cannot learn from one class")
    rng = np.random.default_rng(config.seed)
    train, holdout = [], []
    for _, group in rows.groupby("label", sort=True):
        order = rng.permutation(len(group))
        cut = int(round(len(group) * config.holdout))
        holdout += [group.iloc[i] for i in order[:cut]]
        train += [group.iloc[i] for i in order[cut:]]
    if not holdout or not train:
        raise BadInput(f"--holdout {config.holdout} leaves no labels to train on or to judge by")

    def split(part):
        return [r["text"] for r in part], [CLASSES.index(r["label"].lower()) for r in part]

    return UserLabels(*split(train), *split(holdout))


def original_rows(config: AdaptConfig, rng: random.Random) -> tuple[list[str], list[int]]:
    """A seeded sample of the three-class training split (empty without the shared data)."""
    data_dir = config.data_dir or default_data_dir()
    semeval = None if data_dir is None else data_dir / SEMEVAL_FILE
    if semeval is None or not semeval.is_file() or not config.original_rows:
        log.warning("no three-class training data found: adapting on the labels alone (it may forget the rest)")
        return [], []
    split = load_three_class_split(semeval, SplitSpec(seed=config.seed))
    keep = rng.sample(range(len(split.texts["train"])), min(config.original_rows, len(split.texts["train"])))
    return [split.texts["train"][i] for i in keep], [split.labels["train"][i] for i in keep]


def read_base(base: str):
    """The base model's metadata, once its configuration reads (a directory or a hub name).

    Raises:
        BadInput: when it cannot be read, with the reason.
    """
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(base)
        return read_model_info(base)
    except (OSError, ValueError) as e:
        reason = str(e).splitlines()[0]
        raise BadInput(f"cannot read the base model {base}: {reason}") from e


def sentiment140_texts(config: AdaptConfig, rng: random.Random) -> list[str]:
    """A seeded sample of Sentiment140's training texts (their labels unread; none without the data)."""
    data_dir = config.data_dir or default_data_dir()
    files = sorted((data_dir / "sentiment140").glob("*.csv")) if data_dir else []
    if not files or not config.sentiment140_rows:
        return []
    texts = load_split(files, SplitSpec(seed=config.seed)).texts["train"]
    return [texts[i] for i in rng.sample(range(len(texts)), min(config.sentiment140_rows, len(texts)))]


def check_output(out: Path) -> Path:
    """Claim ``out``: a staging folder beside it, made atomically, so a second adapt is refused.

    Raises:
        BadInput: ``out`` exists, or another adapt is writing it.
    """
    if out.exists():
        raise BadInput(f"{out} exists: choose another --out (a model directory is never overwritten)")
    staging = out.with_name(out.name + ".adapting")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(staging)
    except FileExistsError:
        raise BadInput(
            f"another adapt is writing {out} ({staging} exists); wait for it, or remove it if none runs"
        ) from None
    return staging


def _targets(
    config: AdaptConfig, user: UserLabels, staging: Path, own_texts: list[str], own_labels: list[int]
) -> tuple[Path, list[int]]:
    """Every row's target distribution, as a soft-label file: a person's label (smoothed) for the
    keyword's rows, the base model's own probabilities for the original rows, so that elsewhere it
    stays itself; and the original rows' labels (the base's most likely class where none is known)."""
    from model_api.model.predictor import SentimentPredictor

    base_probs = (
        SentimentPredictor.from_pretrained(config.base, batch_size=128, precision="fp32").class_proba(own_texts)
        if own_texts
        else np.zeros((0, 3))
    )
    own_labels = own_labels + [int(p.argmax()) for p in base_probs[len(own_labels) :]]
    user_targets = np.full((len(user.train_texts), 3), config.smoothing / 2)
    user_targets[np.arange(len(user.train_texts)), user.train_labels] = 1 - config.smoothing
    path = write_soft_labels(
        staging / "targets.parquet",
        user.train_texts + own_texts,
        np.concatenate([user_targets, base_probs]),
        {"adapt": config.keyword},
    )
    return path, own_labels


def _train(config: AdaptConfig, user: UserLabels, staging: Path, base_info) -> dict:
    from experiments.bert_config import TrainConfig
    from experiments.bert_fit import TrainingData, fine_tune
    from experiments.bert_writer import write_model
    from experiments.train_bert import load_base_model, seed_everything

    train_config = TrainConfig(
        out=str(staging),
        base_model=config.base,
        preprocessing=base_info.preprocessing,
        max_length=base_info.max_length,
        epochs=config.epochs,
        lr=config.lr,
        batch_size=config.batch_size,
        seed=config.seed,
        patience=1_000,
        three_class="auto",
        binary_rows=0,
    )
    rng = seed_everything(train_config)
    own_texts, own_labels = original_rows(config, rng)
    own_texts += sentiment140_texts(config, rng)
    targets_file, own_labels = _targets(config, user, staging, own_texts, own_labels)
    train_config = replace(train_config, soft_labels=str(targets_file), distill_weight=1.0, distill_temperature=1.0)
    texts = user.train_texts * config.repeat + own_texts
    labels = user.train_labels * config.repeat + own_labels
    steps = int(np.ceil(len(texts) / config.batch_size) * config.epochs)
    train_config = replace(train_config, eval_every=max(1, steps))  # one evaluation, at the end: no step is chosen
    data = TrainingData(
        train_texts=texts,
        train_labels=labels,
        val_texts=user.train_texts[:200],  # read once, at the end, for the log: nothing is chosen on it
        val_labels=user.train_labels[:200],
        classes=3,
        select={"labels": (user.train_texts, user.train_labels)},
    )
    log.info(
        "fine-tuning %s on %d labels (x%d) and %d original rows kept to its own answers: %d steps",
        config.base,
        len(user.train_texts),
        config.repeat,
        len(own_texts),
        steps,
    )
    model, tokenizer = load_base_model(train_config, classes=3)
    fit = fine_tune(model, tokenizer, data, train_config, rng)
    write_model(model, tokenizer, staging, train_config, texts)
    info = read_model_info(staging)
    write_model_info(staging, replace(info, name=f"{base_info.name}-adapted-{_slug(config.keyword)}"))
    calibrate_by_agreement(staging, calibration_texts(user))
    targets_file.unlink()
    return {"steps": fit.steps, "train_seconds": round(fit.train_seconds, 1), "rows": len(texts)}


def calibration_texts(user: UserLabels) -> list[str]:
    """TweetEval val's texts when the shared data has them (as every bundled model's map), else the
    labels' training texts; never the held-out ones."""
    from experiments.data import TWEETEVAL_VAL, read_three_class, shared_file

    path = shared_file(TWEETEVAL_VAL)
    return read_three_class(path)[0] if path is not None else list(user.train_texts)


def _slug(keyword: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in keyword.lower()).strip("-") or "keyword"


def adapt(config: AdaptConfig, argv: list[str] | None = None) -> dict:
    """Adapt, judge, and write ``config.out`` if the adapted model passes.

    Raises:
        BadInput: before any training, for input that cannot be adapted on.
        Refused: after judging, naming each figure that failed; nothing is written.
    """
    if not 0 < config.holdout < 1:
        raise BadInput(f"--holdout must be between 0 and 1, got {config.holdout}")
    user = read_user_labels(config)
    base_info = read_base(config.base)
    staging = check_output(config.out)
    started = time.monotonic()
    try:
        trained = _train(config, user, staging, base_info)
        figures = judge(config, user, staging)
        failed = verdict(figures, config.tolerance)
        report = {
            "keyword": config.keyword,
            "base": config.base,
            "labels": {"train": len(user.train_texts), "holdout": len(user.holdout_texts)},
            "tolerance": config.tolerance,
            "trained": trained,
            "figures": figures,
            "failed": failed,
            "seconds": round(time.monotonic() - started, 1),
        }
        if failed and not config.force:
            raise Refused("; ".join(failed))
        (staging / "adapt.json").write_text(json.dumps(report, indent=2) + "\n")
        (staging / "README.md").write_text(card(config, figures, trained, argv or [], failed))
        (staging / "checkpoint.pt").unlink(missing_ok=True)
        staging.rename(config.out)
        return report
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.adapt", description=__doc__.splitlines()[0])
    p.add_argument("--labels", type=Path, required=True, help="the labels table (OUTPUT/labels)")
    p.add_argument("--keyword", required=True, help="the keyword whose labels to adapt on")
    p.add_argument("--base", required=True, help="the model directory to adapt (the served one)")
    p.add_argument("--out", type=Path, required=True, help="the new model directory (must not exist)")
    defaults = AdaptConfig(Path(), "", "", Path())
    for name, kind, text in (
        ("holdout", float, "share of the labels kept apart to judge by"),
        ("min-labels", int, "refuse with fewer labels"),
        ("tolerance", float, "the most any standard figure may drop"),
        ("original-rows", int, "three-class training rows mixed in, kept to the base's answers"),
        ("sentiment140-rows", int, "Sentiment140 texts mixed in, kept to the base's answers"),
        ("smoothing", float, "label smoothing of a person's labels"),
        ("repeat", int, "times each label is seen per epoch"),
        ("epochs", float, "epochs over the mixed rows"),
        ("lr", float, "learning rate"),
        ("batch-size", int, "rows per step"),
        ("check-rows", int, "rows of each standard set scored (0: all)"),
        ("seed", int, "seed of the split, the sample and the fit"),
    ):
        attr = name.replace("-", "_")
        p.add_argument(f"--{name}", type=kind, default=getattr(defaults, attr), help=f"{text} (default: %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None, help="the shared data folder (default: ../shared/data)")
    p.add_argument("--force", action="store_true", help="write the model even when a figure failed (it says which)")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    setup_logging()
    options = {f.name: getattr(args, f.name) for f in fields(AdaptConfig)}
    config = AdaptConfig(**{**options, "check_rows": args.check_rows or None})
    try:
        report = adapt(config, argv)
    except BadInput as e:
        log.error("%s", e)
        return 2
    except Refused as e:
        log.error("not written: %s", e)
        return 1
    base, new = report["figures"]["base"], report["figures"]["adapted"]
    log.info(
        "wrote %s in %.0f s: held-out labels macro-F1 %.3f (base %.3f)",
        config.out,
        report["seconds"],
        new["labels_holdout_macro_f1"],
        base["labels_holdout_macro_f1"],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
