"""The adapt trial's band-only refit: the edges that score the drawn labels best, judged on the rest."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.adapt_trial import band_only, simulated_labels

pytestmark = pytest.mark.unit


def test_a_band_refit_on_the_drawn_labels_finds_the_topics_edges_and_is_judged_on_the_rest():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 3000)
    # A topic whose neutral tweets sit at 0.2-0.3 on the model's raw scale, not around 0.5.
    raw = np.where(
        labels == 0,
        rng.uniform(0.0, 0.2, 3000),
        np.where(labels == 1, rng.uniform(0.2, 0.3, 3000), rng.uniform(0.3, 1.0, 3000)),
    )
    texts = [f"tweet {i}" for i in range(3000)]
    rows, rest = simulated_labels(texts, labels.tolist(), 300, seed=1)
    chosen = rows["id"].astype(int).to_numpy()
    assert not set(chosen) & set(rest) and len(rest) == 2700
    refit = band_only(raw, labels.tolist(), chosen, rest)
    low, high = refit["raw_edges"]
    assert 0.15 < low < 0.25 and 0.25 < high < 0.35
    assert refit["macro_f1"] > 0.95  # the rest is scored on edges fitted without it
