"""The fit loop of a fine-tune (:func:`fine_tune`): length-bucketed batches, the mixed binary and
three-class loss, distillation from a teacher, evaluation every ``eval_every`` steps, early stop."""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from tqdm import tqdm
from transformers import get_linear_schedule_with_warmup

from experiments.bert_config import TrainConfig
from experiments.distillation import (
    binary_distillation_loss,
    distillation_loss,
    positive_probability,
    teacher_probabilities,
)
from experiments.evaluation import macro_f1
from model_api.packing import padded_arrays
from sentiment.cleaning import normalise_all

log = logging.getLogger("experiments.train_bert")


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


def mixed_loss(logits: torch.Tensor, labels: torch.Tensor, binary: torch.Tensor | None) -> torch.Tensor:
    """The loss of a batch: cross-entropy on a two-class head; on a three-class head,
    cross-entropy for the three-class rows and, for the Sentiment140 rows (``binary``), the
    log-loss of the positive-probability ``P(positive) + P(neutral) / 2`` the service reads."""
    if logits.shape[1] == 2 or binary is None or not bool(binary.any()):
        return torch.nn.functional.cross_entropy(logits, labels)
    p = positive_probability(logits)
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


def _batch_loss(
    model, ids, mask, y, flags, teacher: np.ndarray | None, binary_teacher: np.ndarray | None, config: TrainConfig
) -> torch.Tensor:
    """The loss of one batch: the labels' (mixed binary and three-class), blended with the
    teacher's; where ``binary_teacher`` has a positive-probability (not NaN), that is the row's
    soft target instead."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        logits = model(input_ids=ids, attention_mask=mask).logits
    logits = logits.float()
    loss = mixed_loss(logits, y, flags)
    if teacher is not None:
        soft = distillation_loss(logits, torch.from_numpy(teacher).float(), config.distill_temperature, per_row=True)
        if binary_teacher is not None:
            target = torch.from_numpy(binary_teacher).float()
            known = ~torch.isnan(target)
            soft = torch.where(known, binary_distillation_loss(logits, target.nan_to_num(0.5)), soft)
        loss = config.distill_weight * soft.mean() + (1 - config.distill_weight) * loss
    return loss


def _teachers(data: TrainingData, config: TrainConfig) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The teacher's probabilities of the training rows, and the binary teacher's
    positive-probability of the Sentiment140 rows (NaN elsewhere). Each row is scored by the one
    teacher that speaks for it: with a binary teacher, the teacher scores the three-class rows
    alone (the others hold a uniform row, never read)."""
    if not config.teacher:
        return None, None
    if not config.binary_teacher:
        return teacher_probabilities(config.teacher, data.train_texts, config.teacher_precision, data.classes), None
    binary_rows = np.array(data.train_binary)
    texts = np.array(data.train_texts, dtype=object)
    teacher = np.full((len(texts), 3), 1 / 3)
    teacher[~binary_rows] = teacher_probabilities(
        config.teacher, list(texts[~binary_rows]), config.teacher_precision, classes=3
    )
    binary = np.full(len(texts), np.nan)
    binary[binary_rows] = teacher_probabilities(
        config.binary_teacher, list(texts[binary_rows]), config.teacher_precision, classes=2
    )
    return teacher, binary


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
    teacher_p, binary_p = _teachers(data, config)
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
            binary_teacher = None if binary_p is None else binary_p[batch]
            loss = _batch_loss(model, ids, mask, y, flags, teacher, binary_teacher, config)
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
