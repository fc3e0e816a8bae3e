"""TF-IDF linear models: logistic regression, linear SVC (calibrated) and multinomial naive Bayes.

Each model is one scikit-learn ``Pipeline`` (cleaning, TF-IDF over 1- to 4-grams with 50,000
features, classifier), saved with joblib. Linear SVC has no probabilities of its own, so it is
wrapped in ``CalibratedClassifierCV`` and the neutral band applies to it as to the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import joblib
import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.naive_bayes import MultinomialNB
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.svm import LinearSVC

from experiments.data import SEED, Split
from experiments.family import FitConfig, Fitted
from sentiment.cleaning import normalise_all

LINEAR_MODELS = ("logreg", "linear_svc", "multinomial_nb")


def _clean(texts) -> list[str]:
    return normalise_all(list(texts), "seed")


def build_pipeline(
    name: str, max_features: int = 50_000, ngram_max: int = 4, seed: int = SEED, sublinear_tf: bool = True
) -> Pipeline:
    """A fresh, unfitted pipeline for one of :data:`LINEAR_MODELS`.

    ``sublinear_tf`` (the tuned recipe) replaces each term count by ``1 + log(count)``; without it
    the pipeline is the reference article's plain TF-IDF.

    Raises:
        ValueError: for an unknown model name.
    """
    if name == "logreg":
        classifier = LogisticRegression(C=1.0, max_iter=1000)
    elif name == "linear_svc":
        classifier = CalibratedClassifierCV(LinearSVC(C=0.1, random_state=seed), cv=3, method="sigmoid")
    elif name == "multinomial_nb":
        classifier = MultinomialNB(alpha=1.0)
    else:
        raise ValueError(f"unknown linear model {name!r}; expected one of {LINEAR_MODELS}")
    return Pipeline(
        [
            ("clean", FunctionTransformer(_clean)),
            (
                "tfidf",
                TfidfVectorizer(
                    ngram_range=(1, ngram_max), max_features=max_features, sublinear_tf=sublinear_tf, dtype=np.float32
                ),
            ),
            ("classifier", classifier),
        ]
    )


def fit(name: str, texts: list[str], labels: list[int], **kwargs) -> Pipeline:
    return build_pipeline(name, **kwargs).fit(texts, labels)


def predict_proba(model: Pipeline, texts: list[str]) -> np.ndarray:
    """Positive-probability of each text: P(positive), or with three classes (negative, neutral,
    positive) P(positive) + P(neutral) / 2, as the served model reads its three outputs."""
    probs = model.predict_proba(texts)
    return probs[:, 2] + probs[:, 1] / 2 if probs.shape[1] == 3 else probs[:, 1]


def save(model: Pipeline, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


class LinearFamily:
    """One of :data:`LINEAR_MODELS` as a family of the comparison; the tuned recipe uses sublinear TF."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fit(self, split: Split, config: FitConfig) -> Fitted:
        tuned = config.recipe == "tuned"
        model = fit(self.name, split.texts["train"], split.labels["train"], seed=config.seed, sublinear_tf=tuned)
        return Fitted(model, "sublinear TF" if tuned else "plain TF")

    def save(self, fitted: Fitted, folder: Path) -> list[Path]:
        return [save(fitted.model, folder / f"{self.name}.joblib")]

    def predict(self, fitted: Fitted, texts: Sequence[str]) -> np.ndarray:
        return predict_proba(fitted.model, list(texts))


FAMILIES = {name: LinearFamily(name) for name in LINEAR_MODELS}
