"""Fast start: the service answers with an eager engine while the compiled one is built in the
background, switches to it, and a later start loads the compiled engine from the cache at once."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from harness.processes import start_service, stop_process, wait_for_service

pytestmark = [pytest.mark.model, pytest.mark.slow]

FAST_MODEL = "models/fast"


def start(cache: Path, log: Path) -> tuple[subprocess.Popen, str]:
    settings = {
        "TWEETSENT_SERVICE__PRECISION": "int8-static",
        "TWEETSENT_SERVICE__MODEL": FAST_MODEL,
        "TWEETSENT_SERVICE__ENGINE_CACHE": str(cache),
        "TWEETSENT_SERVICE__FAST_START": "true",
        "TWEETSENT_SERVICE__WORKERS": "1",
        "TWEETSENT_SERVICE__ENGINE_PROCESSES": "1",
    }
    process, url = start_service(log, settings)
    wait_for_service(process, url, log, timeout=120)
    return process, url


def positive(url: str) -> str:
    r = requests.post(f"{url}/predict", json={"text": "I love this, best day ever"}, timeout=30)
    r.raise_for_status()
    return r.json()["sentiment"]


def test_the_eager_engine_serves_while_the_compiled_one_builds_then_the_service_switches(tmp_path):
    cache = tmp_path / "engines"
    process, url = start(cache, tmp_path / "first.log")
    try:
        first = requests.get(f"{url}/model", timeout=10).json()
        assert (first["engine"], first["engine_state"]) == ("int8", "building int8-static")
        assert positive(url) == "Positive"  # scored before the compiled engine exists
        deadline = time.monotonic() + 300
        while (info := requests.get(f"{url}/model", timeout=10).json())["engine"] != "int8-static":
            assert time.monotonic() < deadline, f"no switch within 300 s; log:\n{(tmp_path / 'first.log').read_text()}"
            time.sleep(0.5)
        assert info["engine_state"] == "ready" and positive(url) == "Positive"
        assert "switched engine from int8 to the compiled int8-static" in (tmp_path / "first.log").read_text()
    finally:
        stop_process(process)
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert sorted(p.name for p in entry.iterdir()) == ["engine.pt2", "meta.json"]

    started = time.monotonic()
    process, url = start(cache, tmp_path / "later.log")
    try:
        healthy = time.monotonic() - started
        info = requests.get(f"{url}/model", timeout=10).json()
        assert (info["engine"], info["engine_state"]) == ("int8-static", "ready")  # from the cache, at once
        assert positive(url) == "Positive"
        assert healthy < 60
    finally:
        stop_process(process)


def test_without_an_engine_cache_the_engine_is_compiled_in_the_background_and_switched_to():
    from model_api.model.predictor import FAST_MODEL_DIR, SentimentPredictor

    texts = ["I love this, best day ever", "this is awful, I hate it", "what a great game", "worst service ever"]
    predictor = SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="int8-static", fast_start=True)
    assert (predictor.describe()["engine"], predictor.describe()["engine_state"]) == ("int8", "compiling int8-static")
    eager = [p.sentiment for p in predictor.predict(texts)]  # served while the compiled engine is prepared
    deadline = time.monotonic() + 300
    while predictor.describe()["engine"] != "int8-static":
        assert time.monotonic() < deadline, f"no switch within 300 s: {predictor.describe()}"
        time.sleep(0.5)
    assert predictor.describe()["engine_state"] == "ready"
    assert [p.sentiment for p in predictor.predict(texts)] == eager == ["Positive", "Negative", "Positive", "Negative"]


def test_a_compile_that_fails_is_tried_again_in_a_fresh_inductor_cache(monkeypatch, caplog):
    from model_api.model.engine_setup import ServedEngine
    from model_api.model.predictor import FAST_MODEL_DIR, SentimentPredictor

    # Inductor's on-disk cache damaged by a process killed while writing it fails every compile there.
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/nonexistent/damaged-cache")
    calls: list[str] = []

    def compile_once_failing(self):
        calls.append(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        if len(calls) == 1:
            raise ImportError("/nonexistent/damaged-cache/kj/x.main.so: file too short")
        return self.current  # the eager engine stands in for the compiled one

    monkeypatch.setattr(ServedEngine, "_compile", compile_once_failing)
    predictor = SentimentPredictor.from_pretrained(FAST_MODEL_DIR, precision="int8-static", fast_start=True)
    deadline = time.monotonic() + 120
    while predictor.describe()["engine"] != "int8-static":
        assert time.monotonic() < deadline, f"no switch within 120 s: {predictor.describe()}"
        time.sleep(0.2)
    assert calls[0] == "/nonexistent/damaged-cache"
    assert calls[1] != calls[0] and Path(calls[1]).is_dir()
    assert "trying again with a fresh Inductor cache" in caplog.text
    assert predictor.describe()["engine_state"] == "ready"
