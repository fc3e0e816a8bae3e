"""How ``python -m experiments.adapt`` judges an adapted model: the figures, the verdict, the card."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from experiments.data import default_data_dir
from sentiment.model_dir import read_model_info

if TYPE_CHECKING:
    from experiments.adapt import AdaptConfig, UserLabels


def judge(config: AdaptConfig, user: UserLabels, candidate: Path) -> dict:
    """Base and adapted, as served: on the held-out labels and on the standard evaluation."""
    from experiments.evaluate import ProbaCache, binary_test, evaluate_row, standard_sets
    from experiments.scorers import model_scorer
    from experiments.three_class import EvalSet

    data_dir = config.data_dir or default_data_dir()
    sets = [EvalSet("labels_holdout", user.holdout_texts, user.holdout_labels)]
    sets += standard_sets(data_dir, max_rows=config.check_rows, seed=config.seed) if data_dir else []
    s140 = sorted((data_dir / "sentiment140").glob("*.csv")) if data_dir else []
    binary = binary_test(s140, config.check_rows) if s140 else None
    cache = ProbaCache(None)
    rows = {}
    for name, folder in (("base", config.base), ("adapted", str(candidate))):
        rows[name] = evaluate_row(model_scorer(folder), sets, binary, cache)
    return {"sets": [s.name for s in sets], **rows}


def verdict(figures: dict, tolerance: float) -> list[str]:
    """What failed, in words (empty: the adapted model may be written)."""
    base, new = figures["base"], figures["adapted"]
    failed = []
    if new["labels_holdout_macro_f1"] <= base["labels_holdout_macro_f1"]:
        failed.append(
            f"held-out labels macro-F1 {new['labels_holdout_macro_f1']:.3f} is not above the base's "
            f"{base['labels_holdout_macro_f1']:.3f}"
        )
    for name in figures["sets"][1:]:
        key = f"{name}_macro_f1"
        if new[key] < base[key] - tolerance:
            failed.append(f"{name} macro-F1 {new[key]:.3f} is more than {tolerance} below the base's {base[key]:.3f}")
    if "sentiment140_accuracy" in base and new["sentiment140_accuracy"] < base["sentiment140_accuracy"] - tolerance:
        failed.append(
            f"Sentiment140 accuracy {new['sentiment140_accuracy']:.4f} is more than {tolerance} below the "
            f"base's {base['sentiment140_accuracy']:.4f}"
        )
    return failed


def card(config: AdaptConfig, figures: dict, trained: dict, argv: list[str], failed: list[str]) -> str:
    head = "| model | " + " | ".join(figures["sets"]) + " | Sentiment140 acc |"
    lines = [head, "|---|" + "---:|" * (len(figures["sets"]) + 1)]
    for name in ("base", "adapted"):
        row = figures[name]
        cells = [f"{row[f'{s}_macro_f1']:.3f}" for s in figures["sets"]]
        acc = row.get("sentiment140_accuracy")
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {'' if acc is None else f'{100 * acc:.2f}%'} |")
    return (
        f"# {read_model_info(config.base).name} adapted to {config.keyword!r}\n\n"
        f"Fine-tuned from `{config.base}` on people's labels of tweets about {config.keyword!r} "
        f"({trained['rows']} training rows: the labels, smoothed by {config.smoothing} and repeated "
        f"{config.repeat} times, and {config.original_rows} three-class training tweets and "
        f"{config.sentiment140_rows} Sentiment140 texts kept to the base model's own probabilities), "
        f"{trained['steps']} steps in {trained['train_seconds']} s. Its probability map is fitted without labels.\n\n"
        "Macro-F1 as served (the band on the mapped positive-probability); `labels_holdout` is the share of the "
        f"labels kept out of training ({config.holdout:.0%}); the other sets are seeded samples of "
        f"{config.check_rows or 'all'} rows of the standard evaluation (`python -m experiments.evaluate`):\n\n"
        + "\n".join(lines)
        + "\n\nMade by:\n\n```\npython -m experiments.adapt "
        + " ".join(argv)
        + "\n```\n\nRoll it out with `python -m model_api.rollout --model DIR` or `POST /admin/model`.\n"
        + ("".join(f"\n**Written with --force although** {f}.\n" for f in failed))
    )
