"""Every model family behind one interface, and the training command line built from its config."""

from dataclasses import fields

import pytest

from experiments.bert_config import TrainConfig, build_parser
from experiments.data import SplitSpec, load_split
from experiments.family import ALL_MODELS, FitConfig, get_family
from tests.conftest import SAMPLE

pytestmark = pytest.mark.unit


@pytest.mark.slow  # imports every family's library (scikit-learn, torch, transformers)
def test_the_registry_names_every_family_in_the_comparison_order():
    assert ALL_MODELS == ("logreg", "linear_svc", "multinomial_nb", "gru", "lstm", "bert")
    for name in ALL_MODELS:
        family = get_family(name)
        assert family.name == name
        assert all(callable(getattr(family, method)) for method in ("fit", "save", "predict"))
    with pytest.raises(ValueError, match="unknown model 'svm'"):
        get_family("svm")


@pytest.mark.slow
def test_a_linear_family_fits_saves_and_predicts(tmp_path):
    split = load_split([SAMPLE], SplitSpec(seed=1))
    family = get_family("multinomial_nb")
    fitted = family.fit(split, FitConfig(seed=1, recipe="reference"))
    assert fitted.notes == "plain TF"
    (path,) = family.save(fitted, tmp_path)
    assert path == tmp_path / "multinomial_nb.joblib" and path.stat().st_size > 0
    probs = family.predict(fitted, ["i love this so much", "i hate this, awful day"])
    assert probs.shape == (2,) and probs[0] > probs[1]


def test_the_command_line_has_one_option_per_field_with_its_default():
    args = build_parser().parse_args(["--out", "m"])
    for f in fields(TrainConfig):
        if f.name != "out":
            assert getattr(args, f.name) == f.default, f.name
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    assert config.base_model  # the packaged base model when none is named


def test_options_parse_to_the_field_types():
    argv = ["--out", "m", "--epochs", "0.5", "--layers", "3", "--no-bf16", "--preprocessing", "seed"]
    args = build_parser().parse_args(argv)
    assert (args.epochs, args.layers, args.bf16, args.preprocessing) == (0.5, 3, False, "seed")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--out", "m", "--preprocessing", "shouting"])
    with pytest.raises(SystemExit):
        build_parser().parse_args([])  # --out is required
