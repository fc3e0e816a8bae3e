"""The comparison's files: results.csv, results.json, results.md (the tables beside the reference
article's figures) and accuracy_throughput.png."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from experiments.plots import plot_summary

REFERENCE = {"bert": 86.3, "gru": 83.6, "lstm": 83.3, "logreg": 79.2, "linear_svc": 78.8, "multinomial_nb": 77.5}


def markdown_table(rows: list[dict], three_class_sets: list[str]) -> str:
    head = ["model", "accuracy %", "reference %", "Δ", "ROC-AUC", "F1 neg", "F1 pos"]
    for s in three_class_sets:
        head += [f"{s} 3-class acc", f"{s} macro-F1", f"{s} calibrated acc"]
    head += ["train s", "tweets/s", "MB"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ref = r["reference_accuracy"]
        cells = [
            r["model"],
            f"{100 * r['accuracy']:.1f}",
            f"{ref:.1f}" if ref else "",
            f"{100 * r['accuracy'] - ref:+.1f}" if ref else "",
            f"{r['roc_auc']:.3f}",
            f"{r['f1_neg']:.3f}",
            f"{r['f1_pos']:.3f}",
        ]
        for s in three_class_sets:
            cells += [
                f"{100 * r[f'{s}_accuracy_3class']:.1f}",
                f"{r[f'{s}_macro_f1_3class']:.3f}",
                f"{100 * r[f'{s}_calibrated_accuracy_3class']:.1f}",
            ]
        cells += [f"{r['train_seconds']:.0f}", f"{r['tweets_per_second']:.0f}", f"{r['size_mb']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_results(
    out: Path, rows: list[dict], info: dict, three_class_sets: list[str], three: tuple[list, list] | None = None
) -> None:
    with (out / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / "results.json").write_text(json.dumps({"run": info, "results": rows}, indent=2) + "\n")
    sizes = info["split"]["sizes"]
    md = (
        f"# Model comparison ({info['profile']} profile)\n\n"
        f"Split (seed {info['seed']}, rows hashed into parts, uniformly random): {sizes['train']:,} train, "
        f"{sizes['val']:,} validation, {sizes['test']:,} test. Accuracy is binary, on the test split. "
        f"Three-class columns apply the neutral band {info['band']}; 'calibrated' first applies temperature "
        f"scaling fitted on the validation split. Reference: the article's figures (trained on 1.6M tweets).\n\n"
        + markdown_table(rows, three_class_sets)
        + "\n"
    )
    if three is not None:
        from experiments.three_class import markdown_table as three_class_table

        rows3, sets = three
        md += (
            "\n## Three classes\n\nEach family trained on the three-class training split, read as served: a "
            "probability map fitted on the first set puts the best band edges at 0.4 and 0.6. `semeval_test` "
            "is held out from every model.\n\n" + three_class_table(rows3, sets) + "\n"
        )
        (out / "results.json").write_text(
            json.dumps({"run": info, "results": rows, "three_class": rows3}, indent=2) + "\n"
        )
    (out / "results.md").write_text(md)
    plot_summary(rows, out / "accuracy_throughput.png")
