import dataclasses
import json

import pytest

from model_api.model.engine_cache import META_FILE, PACKAGE_FILE, EngineCache, EngineKey, model_digest

pytestmark = pytest.mark.unit


def key(**changes) -> EngineKey:
    fields = dict(model="m" * 64, precision="int8-static", packed=True, max_length=64, mixed_bf16=True)
    return EngineKey(**{**fields, **changes})


def test_the_key_changes_with_the_model_torch_cpu_and_engine_settings():
    base = key(torch_version="2.13.0", cpu="AVX512,avx512_bf16")
    others = [
        dataclasses.replace(base, model="n" * 64),
        dataclasses.replace(base, torch_version="2.14.0"),
        dataclasses.replace(base, cpu="AVX2"),
        dataclasses.replace(base, precision="int8-dynamic"),
        dataclasses.replace(base, packed=False),
        dataclasses.replace(base, max_length=128),
        dataclasses.replace(base, mixed_bf16=False),
    ]
    names = {k.name for k in others}
    assert len(names) == len(others) and base.name not in names
    assert dataclasses.replace(base).name == base.name  # and stays the same otherwise


def test_the_model_digest_follows_the_weights_and_the_calibration(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"weights")
    calibration = tmp_path.parent / f"{tmp_path.name}-calibration.txt"
    calibration.write_text("a tweet\n")
    first = model_digest(tmp_path, calibration)
    assert model_digest(tmp_path, calibration) == first
    (tmp_path / "model.safetensors").write_bytes(b"other weights")
    second = model_digest(tmp_path, calibration)
    calibration.write_text("another tweet\n")
    assert len({first, second, model_digest(tmp_path, calibration)}) == 3


def write_package(path):
    path.write_bytes(b"compiled engine")


def test_a_stored_entry_is_found_whole(tmp_path):
    cache = EngineCache(tmp_path)
    package = cache.store(key(), write_package)
    assert cache.package(key()) == package and package.read_bytes() == b"compiled engine"
    assert cache.package(key(packed=False)) is None  # another key: not there


def test_the_entry_appears_only_when_whole_and_a_failed_build_leaves_nothing(tmp_path):
    cache = EngineCache(tmp_path)
    seen_during_build = []

    def build(path):
        path.write_bytes(b"half")
        seen_during_build.append((cache.package(key()), cache.entry(key()).exists()))
        raise RuntimeError("compiler crashed")

    with pytest.raises(RuntimeError, match="compiler crashed"):
        cache.store(key(), build)
    assert seen_during_build == [(None, False)]
    assert list(tmp_path.iterdir()) == []  # no temporary folder left behind


@pytest.mark.parametrize(
    "damage",
    [
        lambda entry: (entry / PACKAGE_FILE).write_bytes(b"compiled engine, truncated"),
        lambda entry: (entry / META_FILE).write_text("{not json"),
        lambda entry: (entry / META_FILE).unlink(),
        lambda entry: (entry / META_FILE).write_text(
            json.dumps({**json.loads((entry / META_FILE).read_text()), "key": {"torch_version": "1.0"}})
        ),
    ],
    ids=["checksum", "unreadable-meta", "no-meta", "other-key"],
)
def test_a_damaged_entry_is_removed_and_built_again(tmp_path, damage):
    cache = EngineCache(tmp_path)
    cache.store(key(), write_package)
    damage(cache.entry(key()))
    assert cache.package(key()) is None
    assert not cache.entry(key()).exists()
    assert cache.package(key()) is None
    rebuilt = cache.store(key(), write_package)
    assert cache.package(key()) == rebuilt


def test_a_package_torch_cannot_load_is_removed(tmp_path):
    from model_api.model.engine_setup import load_package

    cache = EngineCache(tmp_path)
    cache.store(key(), write_package)  # checksum right, but not an AOTInductor package
    assert load_package(cache, key()) is None
    assert not cache.entry(key()).exists()
