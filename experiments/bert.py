"""The BERT-family fine-tune as a family of the comparison: the same code that trains the served model.

:meth:`BertFamily.fit` runs :mod:`experiments.train_bert`'s data preparation and fit loop;
:meth:`BertFamily.save` writes the servable model directory; predictions go through
:class:`model_api.model.predictor.SentimentPredictor` loaded from that directory, as the service loads it.
With ``FitConfig.bert_model`` the family trains nothing and evaluates that directory instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from experiments.bert_config import TrainConfig
from experiments.bert_fit import FitResult, TrainingData, fine_tune
from experiments.bert_writer import write_curve, write_metrics, write_model
from experiments.data import Split
from experiments.family import FitConfig, Fitted
from experiments.train_bert import load_base_model, prepare_data, seed_everything, training_metrics
from model_api.model.predictor import SentimentPredictor


@dataclass
class BertModel:
    """A fine-tune not yet saved (``model`` and what trained it), or a saved directory (``folder``)
    with the predictor that scores through it."""

    model: object = None
    tokenizer: object = None
    config: TrainConfig | None = None
    data: TrainingData | None = None
    split: Split | None = None
    fit: FitResult | None = None
    folder: Path | None = None
    predictor: SentimentPredictor | None = None


class BertFamily:
    name = "bert"

    def fit(self, split: Split, config: FitConfig) -> Fitted:
        if config.bert_model is not None:
            return self._trained_earlier(config.bert_model)
        if config.work_dir is None:
            raise ValueError("the BERT family needs FitConfig.work_dir for its learning curve")
        work_dir = config.work_dir / self.name
        train_config = TrainConfig(
            out=str(work_dir),
            epochs=config.bert_epochs,
            max_train_rows=config.bert_max_train_rows,
            seed=config.seed,
            three_class="none",  # the comparison's binary table; the three-class rows are the served models
        )
        rng = seed_everything(train_config)
        data = prepare_data(split, train_config, rng)
        model, tokenizer = load_base_model(train_config)
        fit = fine_tune(model, tokenizer, data, train_config, rng, on_eval=partial(write_curve, work_dir))
        run = BertModel(model, tokenizer, train_config, data, split, fit)
        return Fitted(run, f"best step {fit.best_step} of {fit.steps}")

    def save(self, fitted: Fitted, folder: Path) -> list[Path]:
        run: BertModel = fitted.model
        if run.model is None:  # trained earlier: its directory is the model
            return [run.folder]
        out = folder / self.name
        info = write_model(run.model, run.tokenizer, out, run.config, run.data.train_texts)
        write_curve(out, run.fit.curve)
        write_metrics(out, training_metrics(run.fit, run.data, run.split, run.config, info.version))
        run.folder, run.predictor = out, SentimentPredictor.from_pretrained(out, precision="fp32")
        return [out]

    def predict(self, fitted: Fitted, texts: Sequence[str]) -> np.ndarray:
        run: BertModel = fitted.model
        if run.predictor is None:
            raise RuntimeError("save the BERT model before predicting: it scores through its saved directory")
        return run.predictor.predict_proba(texts)

    @staticmethod
    def _trained_earlier(folder: Path) -> Fitted:
        """Evaluate a model the same training code already produced (e.g. the served one)."""
        metrics_file = folder / "metrics.json"
        seconds = json.loads(metrics_file.read_text())["train_seconds"] if metrics_file.is_file() else float("nan")
        model = BertModel(folder=folder, predictor=SentimentPredictor.from_pretrained(folder, precision="fp32"))
        return Fitted(model, f"trained earlier: {folder}", recorded_train_seconds=seconds)


FAMILIES = {BertFamily.name: BertFamily()}
