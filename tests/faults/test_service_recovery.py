"""The model service as it is run (``python -m model_api`` under granian, the model in its own
process), broken on purpose: its engine process SIGKILLed under load and SIGSTOPped (hung), a flood
of generated hostile requests, and callers without the token. It must recover by itself, never
answer 500, and log why without the callers' texts."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from harness.processes import model_processes, start_service, stop_process
from tests.hostile_requests import check_answer, hostile_requests

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TOKEN = "test-token-5f2c9a"
WATCHDOG_SECONDS = 3.0
RECOVERY_LIMIT_SECONDS = 20.0
MAX_BODY, MAX_BATCH = 65_536, 64
TEXTS = ["I love this so much", "worst day ever", "it is a table", "not bad at all", "@user http great"]


def loopback_port() -> int:
    """A free port of 18200-18299 on 127.0.0.1."""
    for port in range(18200, 18300):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 18200-18299")


class Service:
    def __init__(self, log: Path) -> None:
        self.port = loopback_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        settings = {
            "TWEETSENT_SERVICE__PRECISION": "fp32",  # starts in seconds: the restarts are timed here
            "TWEETSENT_SERVICE__TORCH_THREADS": "1",
            "TWEETSENT_SERVICE__WORKERS": "1",  # the tests kill the one worker's model process
            "TWEETSENT_SERVICE__ENGINE_PROCESSES": "1",
            "TWEETSENT_SERVICE__ENGINE_WATCHDOG_SECONDS": str(WATCHDOG_SECONDS),
            "TWEETSENT_SERVICE__ENGINE_RESTART_SECONDS": "0.5",
            "TWEETSENT_SERVICE__MAX_BODY_BYTES": str(MAX_BODY),
            "TWEETSENT_SERVICE__MAX_BATCH": str(MAX_BATCH),
            "TWEETSENT_SERVICE__THREADS": "32",
            "TWEETSENT_SERVICE_TOKEN": TOKEN,
        }
        self.process, _ = start_service(log, settings, port=self.port)
        try:
            self.wait_until_ok(180)
        except AssertionError:
            self.stop()
            raise

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def health(self) -> tuple[int, dict]:
        try:
            r = requests.get(self.url + "/health", timeout=5)
        except requests.RequestException as e:
            return 0, {"status": type(e).__name__}
        return r.status_code, r.json()

    def wait_until_ok(self, timeout: float) -> float:
        """Seconds until /health answers ok (polled every 0.1 s, up to ``timeout``)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise AssertionError(f"the service exited; its log:\n{self.log.read_text()[-3000:]}")
            status, body = self.health()
            if status == 200 and body.get("status") == "ok":
                return time.monotonic() - started
            time.sleep(0.1)
        raise AssertionError(f"not ok within {timeout} s; its log:\n{self.log.read_text()[-3000:]}")

    def engine(self) -> int:
        """The pid of the worker's living model process."""
        engines = model_processes(self.process.pid)
        assert engines, "no model process"
        return engines[0]

    def predict(self, texts: list[str]) -> requests.Response:
        return requests.post(self.url + "/predict/batch", json={"texts": texts}, headers=self.auth, timeout=60)

    def stop(self) -> None:
        stop_process(self.process)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("service") / "service.log")
    yield svc
    svc.stop()


@pytest.fixture(scope="module")
def reference(service) -> list[float]:
    r = service.predict(TEXTS)
    assert r.status_code == 200
    return [x["p_positive"] for x in r.json()["results"]]


class Load:
    """Threads that send ``/predict/batch`` requests until stopped, counting the answers."""

    def __init__(self, service: Service, threads: int = 4) -> None:
        self.service = service
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                r = self.service.predict(TEXTS)
            except requests.RequestException as e:
                self.bad.append(f"{type(e).__name__}: {e}")
                continue
            self.statuses[r.status_code] += 1
            if r.status_code == 503 and not r.headers.get("Retry-After"):
                self.bad.append("503 without Retry-After")
            elif r.status_code == 503:
                self.stopping.wait(0.2)  # a client backs off (less than Retry-After, to keep the load on)
            elif r.status_code not in (200, 503):
                self.bad.append(f"HTTP {r.status_code}: {r.text[:200]}")

    def __enter__(self) -> Load:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=60)


def test_a_sigkilled_engine_is_restarted_and_the_service_answers_again(service, reference):
    old = service.engine()
    with Load(service) as load:
        while load.statuses[200] < 8:  # under load before the kill
            time.sleep(0.05)
        killed = time.monotonic()
        os.kill(old, signal.SIGKILL)
        degraded = []
        while not degraded and time.monotonic() - killed < 5:
            status, body = service.health()
            if status == 503:
                degraded.append(body)
        recovery = killed + service.wait_until_ok(RECOVERY_LIMIT_SECONDS) - killed
        while load.statuses[200] < 8 + 8 and time.monotonic() - killed < 60:  # answered again under load
            time.sleep(0.05)
    print(f"SIGKILL: /health ok again {recovery:.1f} s after the kill; answers under load: {dict(load.statuses)}")
    assert load.bad == []
    assert load.statuses[503] >= 1  # the requests in flight and those during the restart
    assert degraded and degraded[0]["status"] == "degraded" and "SIGKILL" in degraded[0]["reason"]
    assert recovery < RECOVERY_LIMIT_SECONDS
    assert service.engine() != old
    r = service.predict(TEXTS)
    assert r.status_code == 200
    assert [x["p_positive"] for x in r.json()["results"]] == pytest.approx(reference, abs=1e-5)
    log = service.log.read_text()
    assert f"the model process (pid {old}) killed by SIGKILL" in log
    assert "the model process is back" in log


def test_a_hung_engine_is_killed_by_the_watchdog_and_restarted(service, reference):
    old = service.engine()
    stopped = time.monotonic()
    os.kill(old, signal.SIGSTOP)
    try:
        # A request sent to the stopped engine is not left hanging: the watchdog ends it with a 503.
        r = service.predict(TEXTS)
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        recovery = stopped + service.wait_until_ok(RECOVERY_LIMIT_SECONDS) - stopped
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(old, signal.SIGCONT)
    print(f"SIGSTOP: /health ok again {recovery:.1f} s after the stop (watchdog {WATCHDOG_SECONDS:g} s)")
    assert WATCHDOG_SECONDS <= recovery < WATCHDOG_SECONDS + RECOVERY_LIMIT_SECONDS
    assert service.engine() != old
    r = service.predict(TEXTS)
    assert [x["p_positive"] for x in r.json()["results"]] == pytest.approx(reference, abs=1e-5)
    assert "killed by SIGKILL (by the watchdog: no answer for" in service.log.read_text()


def test_the_token_is_required_and_the_job_client_sends_it(service, reference):
    from stream.scoring import ScoringOptions, make_session, score_texts

    r = requests.post(service.url + "/predict", json={"text": "hi"}, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Bearer")
    assert requests.get(service.url + "/health", timeout=10).status_code == 200
    assert requests.get(service.url + "/metrics", timeout=10).status_code == 200
    options = ScoringOptions(service_url=service.url, batch_size=2, timeout=30, retries=0, token=TOKEN)
    with make_session(options) as session:
        assert score_texts(TEXTS, session, options) == pytest.approx(reference, abs=1e-5)
    assert TOKEN not in service.log.read_text()


KINDS: Counter[str] = Counter()
STATUSES: Counter[int] = Counter()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(request=hostile_requests(MAX_BODY, MAX_BATCH))
def test_hostile_requests_against_the_real_service_never_get_a_500(service, request):
    headers = {**service.auth, **request.headers}
    data = iter([request.body]) if request.chunked else request.body  # a generator goes chunked
    r = requests.request(request.method, service.url + request.path, data=data, headers=headers, timeout=60)
    KINDS[request.kind] += 1
    STATUSES[r.status_code] += 1
    paths = PATHS.setdefault("paths", requests.get(service.url + "/openapi.json", timeout=10).json()["paths"])
    check_answer(request, r.status_code, r.headers, r.content, paths)


PATHS: dict = {}


def test_after_the_flood_the_service_is_correct_and_its_log_is_short(service, reference):
    print(f"hostile requests to the real service by kind: {dict(KINDS)}; statuses: {dict(STATUSES)}")
    assert sum(KINDS.values()) >= 300 and STATUSES[500] == 0
    r = service.predict([TEXTS[0], "lone \ud800 surrogate", TEXTS[1]])
    assert r.status_code == 200
    results = [x["p_positive"] for x in r.json()["results"]]
    assert results[0] == pytest.approx(reference[0], abs=1e-5) and results[2] == pytest.approx(reference[1], abs=1e-5)
    log = service.log.read_text()
    assert "Traceback" not in log
    assert "lone" not in log and TEXTS[0] not in log  # texts never reach the log
    assert len(log.splitlines()) < 100, log[-3000:]


def test_oversized_chunked_and_deep_bodies_on_the_wire(service):
    chunked = requests.post(
        service.url + "/predict",
        data=iter([b'{"text": "', b"x" * (MAX_BODY + 10), b'"}']),
        headers={**service.auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert chunked.status_code == 413 and "larger than the limit" in chunked.json()["error"]
    deep = requests.post(
        service.url + "/predict",
        data=io.BytesIO(b"[" * 1000 + b"]" * 1000).read(),
        headers={**service.auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert deep.status_code == 400 and "nested too deeply" in deep.json()["error"]
    bad = requests.post(
        service.url + "/predict",
        data=b'{"text": "\xff"}',
        headers={**service.auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert bad.status_code == 400 and json.loads(bad.content)["error"].startswith("request body is not valid UTF-8")


def test_stopping_the_service_after_restarts_leaves_no_model_process(service):
    engine = service.engine()  # started by the supervisor thread, not the worker's main thread
    service.stop()
    deadline = time.monotonic() + 15
    while Path(f"/proc/{engine}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{engine}").exists()
