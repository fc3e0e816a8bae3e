"""The learning curve merges result folders of any families and fractions into one plot."""

import json

import pytest

from experiments.compare import main
from experiments.plots import curve_points

pytestmark = pytest.mark.unit


def results(train: int, accuracies: dict[str, float]) -> dict:
    return {
        "run": {"split": {"sizes": {"train": train, "val": 10, "test": 10}}},
        "results": [{"model": m, "accuracy": a} for m, a in accuracies.items()],
    }


def test_points_are_grouped_by_model_and_sorted_by_training_size():
    runs = [
        results(1000, {"logreg": 0.80, "gru": 0.81}),
        results(100, {"logreg": 0.70}),
        results(100, {"gru": 0.72}),
    ]
    assert curve_points(runs) == {"logreg": [(100, 70.0), (1000, 80.0)], "gru": [(100, 72.0), (1000, 81.0)]}


def test_plot_curve_writes_a_png_from_result_folders(tmp_path):
    dirs = []
    for i, run in enumerate([results(100, {"logreg": 0.7}), results(1000, {"logreg": 0.8})]):
        d = tmp_path / f"run{i}"
        d.mkdir()
        (d / "results.json").write_text(json.dumps(run))
        dirs.append(str(d))
    assert main(["--plot-curve", *dirs, "--out", str(tmp_path / "plots")]) == 0
    (png,) = (tmp_path / "plots").glob("learning_curve-*.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_curve_names_folders_without_results(tmp_path, capsys):
    assert main(["--plot-curve", str(tmp_path)]) == 2
    assert "no results.json" in capsys.readouterr().err
