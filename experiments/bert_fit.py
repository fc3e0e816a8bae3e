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
from experiments.fit_state import BestWeights, Checkpoint, LoopState
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
    # Sets the best step is chosen on (name -> texts, three-class labels), instead of the validation rows.
    select: dict[str, tuple[list[str], list[int]]] = field(default_factory=dict)


@dataclass(frozen=True)
class FitResult:
    """What the fit loop did: the learning curve, the best evaluation, the steps run and the time."""

    curve: list[dict]
    best_score: float
    best_step: int
    steps: int
    train_seconds: float


def mixed_loss(
    logits: torch.Tensor, labels: torch.Tensor, binary: torch.Tensor | None, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """The loss of a batch: cross-entropy on a two-class head; on a three-class head,
    cross-entropy for the three-class rows (each class weighed by ``weight`` when given) and, for
    the Sentiment140 rows (``binary``), the log-loss of the positive-probability
    ``P(positive) + P(neutral) / 2`` the service reads."""
    if logits.shape[1] == 2:
        return torch.nn.functional.cross_entropy(logits, labels)
    three_loss = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    if weight is not None:
        three_loss = three_loss * weight[labels]
    if binary is None or not bool(binary.any()):
        return three_loss.mean()
    p = positive_probability(logits)
    binary_loss = torch.nn.functional.binary_cross_entropy(p, (labels == 2).float(), reduction="none")
    return torch.where(binary, binary_loss, three_loss).mean()


def class_weights(labels: list[int], binary: list[bool], classes: int = 3) -> torch.Tensor:
    """Weights of the classes inverse to their shares among the three-class rows, with mean 1
    over those rows (so the loss keeps its scale).

    Raises:
        ValueError: when a class has no row.
    """
    own = np.array([y for y, b in zip(labels, binary or [False] * len(labels), strict=True) if not b])
    counts = np.bincount(own, minlength=classes).astype(float)
    if (counts == 0).any():
        raise ValueError(f"--class-weight balanced: a class has no training row (counts {counts.tolist()})")
    return torch.tensor(len(own) / (classes * counts), dtype=torch.float32)


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
    """``(input_ids, attention_mask)`` of the batch, each text padded with ``pad_id`` to the
    longest one's length, as the service pads a pass of texts it does not pack."""
    ids = torch.full((len(seqs), max(len(s) for s in seqs)), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


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
    model,
    ids,
    mask,
    y,
    flags,
    teacher: np.ndarray | None,
    binary_teacher: np.ndarray | None,
    config: TrainConfig,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss of one batch: the labels' (mixed binary and three-class), blended with the
    teacher's; where ``binary_teacher`` has a positive-probability (not NaN), that is the row's
    soft target instead."""
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        logits = model(input_ids=ids, attention_mask=mask).logits
    logits = logits.float()
    if config.soft_labels and flags is not None:  # the Sentiment140 rows have no label to learn from
        labelled = ~flags
        loss = mixed_loss(logits[labelled], y[labelled], None, weight) if bool(labelled.any()) else logits.sum() * 0
    else:
        loss = mixed_loss(logits, y, flags, weight)
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
    if config.soft_labels:
        from experiments.soft_labels import SoftLabels

        return SoftLabels(config.soft_labels).lookup(data.train_texts), None
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
        "val_loss": round(metrics["loss"], 4) if "loss" in metrics else None,
        **{f"val_{k}": round(metrics[k], 4) for k in ("accuracy", "macro_f1", "score") if k in metrics},
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _evaluation(
    model, pad_id: int, data: TrainingData, val_ids, select_ids: dict, loop: LoopState, steps_per_epoch, started
):
    """Score the validation rows and the selection sets (``select_ids``: name -> token ids,
    labels); return the curve's new point and the score that picks the best step (the selection
    sets' mean macro-F1, the most likely class, when there are any)."""
    metrics = evaluate(model, val_ids, data.val_labels, pad_id, data.val_binary or None) if val_ids else {}
    selected = {name: evaluate(model, ids, labels, pad_id)["macro_f1"] for name, (ids, labels) in select_ids.items()}
    if selected:
        metrics["score"] = float(np.mean(list(selected.values())))
    point = _eval_point(metrics, loop.step, steps_per_epoch, loop.running, started)
    point.update({f"select_{name}_macro_f1": round(v, 4) for name, v in selected.items()})
    return point, metrics["score"]


def fine_tune(
    model,
    tokenizer,
    data: TrainingData,
    config: TrainConfig,
    rng: random.Random,
    on_eval: Callable[[list[dict]], None] | None = None,
) -> FitResult:
    """The fit loop: train ``model`` in place on length-bucketed batches drawn with ``rng``, score
    the validation rows (and the selection sets) every ``eval_every`` steps, handing the curve so
    far to ``on_eval`` and writing a checkpoint, stop early, and leave the model with its best
    weights. The best step is the one of the best mean macro-F1 on the selection sets when there
    are any, else of the best validation score."""
    teacher_p, binary_p = _teachers(data, config)
    train_ids, val_ids = _token_ids(tokenizer, data.train_texts, config), _token_ids(tokenizer, data.val_texts, config)
    select_ids = {name: (_token_ids(tokenizer, texts, config), labels) for name, (texts, labels) in data.select.items()}
    train_binary = torch.tensor(data.train_binary) if data.train_binary else None
    weight = (
        class_weights(data.train_labels, data.train_binary, data.classes) if config.class_weight == "balanced" else None
    )
    steps_per_epoch = math.ceil(len(train_ids) / config.batch_size)
    total_steps = int(steps_per_epoch * config.epochs)
    optimizer, scheduler = _optimizer(model, config, total_steps)
    checkpoint, best = Checkpoint(config), BestWeights(config.patience)
    loop = checkpoint.restore(model, optimizer, scheduler, rng, best) if config.resume else LoopState()
    started = time.monotonic() - loop.spent
    progress = tqdm(total=total_steps, initial=loop.step, desc="fine-tune", unit="step", mininterval=5)
    stop = loop.step >= total_steps
    while not stop:
        batch = loop.next_batch(train_ids, config, rng)
        ids, mask = _pad([train_ids[i] for i in batch], tokenizer.pad_token_id)
        y = torch.tensor([data.train_labels[i] for i in batch])
        flags = None if train_binary is None else train_binary[batch]
        teacher = None if teacher_p is None else teacher_p[batch]
        binary_teacher = None if binary_p is None else binary_p[batch]
        loss = _batch_loss(model, ids, mask, y, flags, teacher, binary_teacher, config, weight)
        _step(model, loss, optimizer, scheduler)
        loop.step += 1
        loop.running = 0.98 * loop.running + 0.02 * loss.item() if loop.step > 1 else loss.item()
        progress.update(1)
        progress.set_postfix(loss=f"{loop.running:.3f}", best=f"{best.score:.4f}", refresh=False)
        if loop.step % config.eval_every == 0 or loop.step >= total_steps:
            point, score = _evaluation(
                model, tokenizer.pad_token_id, data, val_ids, select_ids, loop, steps_per_epoch, started
            )
            loop.curve.append(point)
            log.info("eval %s", point)
            if on_eval is not None:
                on_eval(loop.curve)
            stop = best.update(model, score, loop.step) or loop.step >= total_steps
            if not stop:
                checkpoint.save(model, optimizer, scheduler, rng, loop, best, started)
    progress.close()
    checkpoint.remove()
    log.info("stopped at step %d (best %.4f at step %d)", loop.step, best.score, best.step)
    if best.state is None:  # resumed past the last step: the checkpoint's best stands
        raise RuntimeError("no evaluation was made; run with more --epochs")
    model.load_state_dict(best.state)
    return FitResult(loop.curve, best.score, best.step, loop.step, time.monotonic() - started)
