"""The service as it is run: ``python -m model_api`` (granian), the model in a process of its own, on
a loopback port; results must equal the in-process predictor's."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from harness.processes import model_processes, start_service, stop_process, wait_for_service
from sentiment.sentiment140 import iter_rows
from tests.conftest import SAMPLE

pytestmark = [pytest.mark.model, pytest.mark.slow]

TEXTS = [r.text for r in iter_rows(SAMPLE)][:48]


class Service:
    def __init__(self, log: Path) -> None:
        settings = {
            "TWEETSENT_SERVICE__PRECISION": "fp32",
            "TWEETSENT_SERVICE__ENGINE_PROCESS": "true",
            "TWEETSENT_SERVICE__WORKERS": "1",  # the tests follow the one worker
            "TWEETSENT_SERVICE__ENGINE_PROCESSES": "1",
        }
        self.log = log
        self.process, self.url = start_service(log, settings)
        (self.worker,) = wait_for_service(self.process, self.url, log, timeout=180)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("svc") / "service.log")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def reference():
    from model_api.model.predictor import SentimentPredictor

    return SentimentPredictor.from_pretrained(precision="fp32").predict(TEXTS)


def test_batch_results_equal_the_in_process_predictor(service, reference):
    r = requests.post(f"{service.url}/predict/batch", json={"texts": TEXTS}, timeout=60)
    assert r.status_code == 200
    got = r.json()["results"]
    assert [g["sentiment"] for g in got] == [p.sentiment for p in reference]
    assert [g["p_positive"] for g in got] == pytest.approx([p.p_positive for p in reference], abs=1e-5)


def test_concurrent_single_requests_share_passes_and_each_gets_its_own_answer(service, reference):
    def one(i: int) -> tuple[int, dict]:
        return i, requests.post(f"{service.url}/predict", json={"text": TEXTS[i]}, timeout=60).json()

    before = requests.get(f"{service.url}/metrics", timeout=10).text
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = dict(pool.map(one, range(len(TEXTS))))
    for i, body in answers.items():
        assert body["p_positive"] == pytest.approx(reference[i].p_positive, abs=1e-5), TEXTS[i]
    after = requests.get(f"{service.url}/metrics", timeout=10).text
    passes = metric(after, "tweetsent_batch_texts_count") - metric(before, "tweetsent_batch_texts_count")
    assert passes < len(TEXTS)  # micro-batched across requests


def test_the_model_runs_in_a_child_of_the_worker(service):
    assert len(model_processes(service.worker)) == 1


def metric(exposition: str, name: str) -> float:
    for line in exposition.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_stopping_the_service_stops_its_model_process(tmp_path):
    svc = Service(tmp_path / "service.log")
    (engine,) = model_processes(svc.worker)
    svc.stop()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{engine}").exists()


def fp32_config(**service):
    import dataclasses

    from sentiment.config import load_config

    config = load_config()
    return dataclasses.replace(
        config, service=dataclasses.replace(config.service, precision="fp32", torch_threads=1, **service)
    )


def test_a_failed_prediction_is_reported_and_the_model_process_serves_on(reference):
    from model_api.runner.engine_process import RemotePredictionError
    from model_api.runner.pool import PredictorProcess

    process = PredictorProcess(fp32_config()).start()
    try:
        with pytest.raises(RemotePredictionError, match="in the model process"):
            process.predict([None])
        assert process.alive
        assert process.predict(TEXTS[:3])[0].p_positive == pytest.approx(reference[0].p_positive, abs=1e-5)
    finally:
        process.close()
    assert not process.alive


def test_a_model_that_cannot_load_fails_the_start_with_the_reason(tmp_path):
    from model_api.runner.engine_process import EngineProcessError
    from model_api.runner.pool import PredictorProcess

    with pytest.raises(EngineProcessError, match="no-such-model"):
        PredictorProcess(fp32_config(model=str(tmp_path / "no-such-model"))).start()


def test_the_model_process_batches_concurrent_calls_and_a_bad_one_fails_alone(reference):
    from model_api.runner.engine_process import RemotePredictionError
    from model_api.runner.pool import PredictorProcess

    process = PredictorProcess(fp32_config()).start()
    batches: list[int] = []
    process.on_batch = lambda texts, seconds: batches.append(texts)
    try:
        calls = [[t] for t in TEXTS[:24]] + [TEXTS[24:40]] + [[None]]  # singles, a batch, a bad one
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = [pool.submit(process.predict, texts, 60) for texts in calls]
        for i, future in enumerate(futures[:24]):
            assert future.result()[0].p_positive == pytest.approx(reference[i].p_positive, abs=1e-5)
        assert [p.p_positive for p in futures[24].result()] == pytest.approx(
            [p.p_positive for p in reference[24:40]], abs=1e-5
        )
        with pytest.raises(RemotePredictionError, match="in the model process"):
            futures[25].result()
        assert len(batches) < len(calls)  # calls shared predictions
        assert process.predict(TEXTS[:1])[0].p_positive == pytest.approx(reference[0].p_positive, abs=1e-5)
    finally:
        process.close()


def test_a_request_given_up_before_the_model_process_begins_it_is_never_scored():
    from model_api.runner.interface import collect
    from model_api.runner.pool import PredictorProcess

    # Passes of 16 texts, no watchdog: a slow machine only makes the test slower.
    process = PredictorProcess(fp32_config(micro_batch_max=16, engine_watchdog_seconds=0)).start()
    scored: list[int] = []
    process.on_batch = lambda texts, seconds: scored.append(texts)
    try:
        busy = process.submit(TEXTS * 2)  # 96 texts: six passes
        given_up = process.submit(TEXTS * 2)  # queued behind it in the model process
        given_up.forget()  # its client is gone
        assert len(collect([busy], 300)) == 96
        assert process.predict(TEXTS[:1], 300)  # sent after the cancellation: answered after it took effect
        deadline = time.monotonic() + 30  # each pass is reported just after its answers
        while sum(scored) < 97 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sum(scored) == 97, f"{sum(scored)} texts scored: the abandoned request's were scored too"
    finally:
        process.close()
