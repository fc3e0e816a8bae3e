"""SIGTERM stops every part of the relay within 10 s, in every mode, as a real process.

The replay into the spool and over a socket whose buffer is full with no client; the live relay on
the filtered stream (open, between keep-alives) and on recent search (in its poll interval, and in
a rate-limit wait of 15 minutes), into the spool and over the socket. The X API is the stand-in of
``tests/fake_x_api.py``; the job and the service are in ``test_writers.py``.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from harness.pipeline import work_env
from harness.processes import free_port, sigterm_and_time, start_module, start_process, stop_group, wait_until
from tests.conftest import ROOT
from tests.fake_x_api import fake_x_api

pytestmark = [pytest.mark.faults]

STOP_WITHIN = 10.0


def start(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return start_module(*args, log=tmp_path / "part.log", env={**os.environ, **(env or {})})


def log_of(tmp_path: Path) -> str:
    return (tmp_path / "part.log").read_text(errors="replace")


def relay_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "TWEETSENT_RELAY__SPOOL": str(tmp_path / "spool"),
        "TWEETSENT_RELAY__PORT": str(free_port()),
        "TWITTER_BEARER_TOKEN": "test-token",
        **extra,
    }


@pytest.mark.parametrize(
    "args, ready",
    [
        (("replay", "--limit", "100000", "--rate", "20"), "relay: writing"),
        (("replay", "--transport", "socket", "--rate", "0", "--buffer", "10"), "relay: listening on"),
    ],
    ids=["replay-spool", "replay-socket-buffer-full"],
)
def test_the_replay_stops_within_10_s_of_sigterm(tmp_path, args, ready):
    proc = start(tmp_path, "ingest", *args, env=relay_env(tmp_path))
    wait_until(lambda: ready in log_of(tmp_path), 60, "the relay to start")
    time.sleep(1)  # into the steady state: pacing, or blocked on the full buffer
    took = sigterm_and_time(proc)
    assert took < STOP_WITHIN, f"the relay took {took:.1f}s to stop:\n{log_of(tmp_path)[-2000:]}"
    assert proc.returncode == 0


@pytest.mark.parametrize("transport", ["spool", "socket"])
@pytest.mark.parametrize(
    "mode, rate_limited",
    [("stream", False), ("search", False), ("search", True)],
    ids=["stream-open", "search-poll-interval", "search-rate-limit"],
)
def test_the_live_relay_stops_within_10_s_of_sigterm(tmp_path, transport, mode, rate_limited):
    with fake_x_api(rate_limited=rate_limited) as api:
        env = relay_env(tmp_path, TWITTER_API_URL=api.url)
        args = ("twitter", "--track", "coffee", "--mode", mode, "--transport", transport, "--poll-interval", "600")
        proc = start(tmp_path, "ingest", *args, env=env)
        endpoint = "/2/tweets/search/stream?" if mode == "stream" else "/2/tweets/search/recent"
        wait_until(lambda: any(r.startswith(endpoint) for r in api.requests), 60, f"the relay to call {endpoint}")
        time.sleep(1)  # reading the open stream, or waiting
        took = sigterm_and_time(proc)
    assert took < STOP_WITHIN, f"the relay took {took:.1f}s to stop:\n{log_of(tmp_path)[-2000:]}"
    assert proc.returncode == 0, log_of(tmp_path)[-2000:]
    if mode == "stream":
        assert "3 tweet(s) received" in log_of(tmp_path)


@pytest.mark.slow
def test_run_pipeline_stops_every_part_within_10_s_of_sigterm(tmp_path):
    env = {**os.environ, **work_env(tmp_path)}
    env |= {"TWEETSENT_SERVICE__PORT": str(free_port()), "TWEETSENT_SERVICE__PRECISION": "fp32"}
    command = ["./run_pipeline.sh", "--loop", "--limit", "100000", "--rate", "20"]
    proc = start_process(command, tmp_path / "part.log", env)
    try:
        for ready in ("healthy after", "stream: reading"):  # the service, then the job's Spark session
            wait_until(lambda r=ready: r in log_of(tmp_path) or proc.poll() is not None, 900, ready)
            assert proc.poll() is None, log_of(tmp_path)[-3000:]
        time.sleep(2)  # the service, the relay and the job all at work
        took = sigterm_and_time(proc)
    finally:
        if proc.poll() is None:
            stop_group(proc)
    print(f"run_pipeline.sh and all its parts gone {took:.1f}s after SIGTERM")
    assert took < STOP_WITHIN, f"the pipeline took {took:.1f}s to stop:\n{log_of(tmp_path)[-3000:]}"
    # The relay stopped on its own; the job may have needed the escalation (its JVM's Python workers).
    assert "replay stopped" in (ROOT / "output" / "logs" / "relay.log").read_text()
