"""A service of two workers (the default on two cores) with one worker SIGKILLed under load: the
other keeps answering, the dead one is started again, and every request is answered or refused
with a connection error, never a wrong answer or a 5xx."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
import requests

from harness.processes import (
    model_processes,
    process_tree,
    start_service,
    stop_process,
    wait_for_workers,
    wait_until,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TEXTS = ["I love this so much", "worst day ever", "it is a table"]


def answering_workers(url: str, seconds: float) -> set[int]:
    """The worker pids that answer ``GET /health`` on fresh connections during ``seconds``."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException, ValueError, KeyError):
            seen.add(int(requests.get(url + "/health", timeout=2, headers={"Connection": "close"}).json()["worker"]))
        time.sleep(0.02)
    return seen


@pytest.fixture
def service(tmp_path):
    log = tmp_path / "service.log"
    settings = {
        "TWEETSENT_SERVICE__PRECISION": "fp32",  # starts in seconds
        "TWEETSENT_SERVICE__WORKERS": "2",
        "TWEETSENT_SERVICE__ENGINE_PROCESSES": "1",
        "TWEETSENT_SERVICE__TORCH_THREADS": "1",
    }
    process, url = start_service(log, settings)
    try:
        yield process, url, log
    finally:
        stop_process(process)


def test_a_killed_worker_is_started_again_while_the_other_serves(service):
    process, url, log = service
    workers = wait_for_workers(url, 2, timeout=180)
    assert workers <= set(process_tree(process.pid))
    victim, survivor = sorted(workers)
    (victims_model,) = model_processes(victim)

    statuses: Counter = Counter()
    wrong: list[str] = []
    stop = threading.Event()

    def load() -> None:
        n = 0
        while not stop.is_set():
            text = TEXTS[n % len(TEXTS)]
            n += 1
            try:
                r = requests.post(url + "/predict", json={"text": text}, timeout=10, headers={"Connection": "close"})
            except requests.RequestException as e:
                statuses[type(e).__name__] += 1
                continue
            statuses[r.status_code] += 1
            if r.status_code == 200 and not 0 <= r.json()["p_positive"] <= 1:
                wrong.append(r.text)

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        before = statuses[200]
        os.kill(victim, signal.SIGKILL)
        killed_at = time.monotonic()
        # The survivor answers meanwhile, and a new worker joins it.
        new: set[int] = set()

        def new_worker_answers() -> bool:
            new.update(answering_workers(url, 0.5) - {victim, survivor})
            return bool(new)

        wait_until(new_worker_answers, 120, "a new worker answering")
        restarted = time.monotonic() - killed_at
        after_restart = statuses[200]
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=15)

    print(f"worker {victim} SIGKILLed; {sorted(new)} answering {restarted:.1f} s later; answers {dict(statuses)}")
    assert process.poll() is None, f"the service exited; its log:\n{log.read_text()[-3000:]}"
    assert answering_workers(url, 2.0) >= {survivor}
    assert not wrong
    assert after_restart > before  # the survivor kept answering while the victim was down
    assert statuses[200] > after_restart  # and both serve after the restart
    assert not [s for s in statuses if isinstance(s, int) and s >= 500], dict(statuses)
    # The dead worker's model process does not outlive it, and the new worker has its own.
    wait_until(lambda: not Path(f"/proc/{victims_model}").exists(), 30, f"model process {victims_model} exiting")
    (new_worker,) = new
    assert len(model_processes(new_worker)) == 1
