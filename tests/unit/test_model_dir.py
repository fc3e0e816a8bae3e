"""The model directory's metadata and calibration tweets: written and read by one module."""

import json

import pytest

from sentiment.model_dir import (
    CALIBRATION_FILE,
    METADATA_FILE,
    ModelInfo,
    read_calibration_texts,
    read_model_info,
    write_calibration_texts,
    write_model_info,
)

pytestmark = pytest.mark.unit


def test_written_metadata_reads_back_the_same(tmp_path):
    info = ModelInfo(name="m-sentiment140", version="202601010000", preprocessing="seed", max_length=32)
    write_model_info(tmp_path, info)
    assert read_model_info(tmp_path) == info
    assert json.loads((tmp_path / METADATA_FILE).read_text()) == {
        "name": "m-sentiment140",
        "version": "202601010000",
        "preprocessing": "seed",
        "max_length": 32,
        "positive_index": 1,
        "probability_map": [],
    }


def test_a_plain_checkpoint_gets_the_defaults_named_after_its_folder(tmp_path):
    folder = tmp_path / "some-bert"
    folder.mkdir()
    assert read_model_info(folder) == ModelInfo(
        name="some-bert", version="unversioned", preprocessing="light", max_length=128, positive_index=1
    )
    assert read_model_info("org/hub-model").name == "hub-model"


def test_missing_fields_take_the_defaults(tmp_path):
    (tmp_path / METADATA_FILE).write_text(json.dumps({"name": "old", "max_length": "64"}))
    assert read_model_info(tmp_path) == ModelInfo(name="old", max_length=64)


def test_an_unknown_preprocessing_is_refused(tmp_path):
    (tmp_path / METADATA_FILE).write_text(json.dumps({"name": "m", "preprocessing": "shouting"}))
    with pytest.raises(ValueError, match="unknown preprocessing 'shouting'"):
        read_model_info(tmp_path)


def test_calibration_texts_are_a_seeded_sample_one_per_line(tmp_path):
    texts = [f"tweet {i}\nwith a break" for i in range(50)]
    write_calibration_texts(tmp_path, texts, seed=3, count=10)
    chosen = read_calibration_texts(tmp_path)
    assert len(chosen) == 10 and len(set(chosen)) == 10
    assert all(t.startswith("tweet ") and t.endswith(" with a break") for t in chosen)
    other = tmp_path / "again"
    other.mkdir()
    write_calibration_texts(other, texts, seed=3, count=10)
    assert read_calibration_texts(other) == chosen


def test_calibration_texts_fall_back_to_another_directory(tmp_path):
    own, fallback = tmp_path / "own", tmp_path / "fallback"
    own.mkdir()
    fallback.mkdir()
    (fallback / CALIBRATION_FILE).write_text("one\n\ntwo\n", encoding="utf-8")
    assert read_calibration_texts(own, fallback=fallback) == ["one", "two"]
    with pytest.raises(FileNotFoundError):
        read_calibration_texts(own)
