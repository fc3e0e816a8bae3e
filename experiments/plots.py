"""The comparison's figures: confusion matrices, accuracy against throughput, learning curves.

Matplotlib is imported inside each function, with the non-interactive Agg backend, so that
importing this module costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from sentiment.labels import LABELS


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(matrix: np.ndarray, title: str, path: Path) -> None:
    """A three-class confusion matrix (true rows, predicted columns) with its counts."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 3.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(3), LABELS, rotation=30)
    ax.set_yticks(range(3), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_summary(rows: list[dict], path: Path) -> None:
    """Test accuracy beside the reference article's, and tweets per second, per model."""
    plt = _pyplot()
    names = [r["model"] for r in rows]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    x = np.arange(len(rows))
    a.bar(x - 0.2, [100 * r["accuracy"] for r in rows], 0.4, label="ours")
    a.bar(x + 0.2, [r["reference_accuracy"] or 0 for r in rows], 0.4, label="reference article", alpha=0.6)
    a.set_xticks(x, names, rotation=30)
    a.set_ylim(50, 100)
    a.set_ylabel("test accuracy (%)")
    a.legend(fontsize=8)
    b.bar(x, [r["tweets_per_second"] for r in rows])
    b.set_xticks(x, names, rotation=30)
    b.set_yscale("log")
    b.set_ylabel("tweets/s (batch, 2 CPU cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def curve_points(runs: list[dict]) -> dict[str, list[tuple[int, float]]]:
    """Test accuracy (%) against training tweets, per model, from the ``results.json`` of runs."""
    points: dict[str, dict[int, float]] = {}
    for run_info in runs:
        size = run_info["run"]["split"]["sizes"]["train"]
        for row in run_info["results"]:
            points.setdefault(row["model"], {})[size] = 100 * row["accuracy"]
    return {m: sorted(by_size.items()) for m, by_size in points.items()}


def plot_learning_curve(runs: list[dict], out_root: Path) -> Path:
    """Test accuracy against training tweets from the ``results.json`` of runs; returns the new PNG."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, points in curve_points(runs).items():
        ax.plot([x for x, _ in points], [y for _, y in points], marker="o", label=model)
    ax.set_xscale("log")
    ax.set_xlabel("training tweets")
    ax.set_ylabel("test accuracy (%)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_root.mkdir(parents=True, exist_ok=True)
    path = out_root / f"learning_curve-{stamp}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"compare: learning curve in {path}")
    return path


def plot_training_curve(curve: list[dict], path: Path) -> None:
    """Validation accuracy (and three-class macro-F1, when measured) and the training and validation
    losses of a fine-tune, per epoch."""
    try:
        plt = _pyplot()
    except ImportError:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [p["epoch"] for p in curve]
    if all("val_accuracy" in p for p in curve):
        ax.plot(epochs, [p["val_accuracy"] for p in curve], marker="o", label="validation accuracy (binary)")
    if all("val_macro_f1" in p for p in curve):
        ax.plot(epochs, [p["val_macro_f1"] for p in curve], marker="s", label="validation macro-F1 (3 classes)")
    for key in sorted(k for k in curve[-1] if k.startswith("select_")):
        name = key.removeprefix("select_").removesuffix("_macro_f1")
        ax.plot(epochs, [p.get(key) for p in curve], marker="^", label=f"{name} macro-F1 (selection)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy / macro-F1")
    ax2 = ax.twinx()
    ax2.plot([p["epoch"] for p in curve], [p["train_loss"] for p in curve], color="grey", alpha=0.6, label="train loss")
    if all(p.get("val_loss") is not None for p in curve):
        ax2.plot(epochs, [p["val_loss"] for p in curve], color="red", alpha=0.6, label="val loss")
    ax2.set_ylabel("loss")
    fig.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
