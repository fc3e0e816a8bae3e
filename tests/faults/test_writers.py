"""One writer per folder, a spool's identity and state never ahead of data, with real processes.

Two relays on one spool (the second refused), a relay whose disk refuses writes (exit 3, then
resumed without loss), a live relay whose spool writer fails (exit 3, not a silent drop), two jobs
on one checkpoint (the second refused, the first stopped by SIGTERM within 10 s with its JVM), and
the relay started over under a resumed job (a clear error, nothing skipped). The model service is
a Flask app with a fake predictor in the test process, except for the service's own SIGTERM test.
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from harness.pipeline import Pipeline
from harness.processes import file_size_limit, run_module, sigterm_and_time, wait_until
from sentiment.folders import read_holder
from tests.conftest import FakePredictor
from tests.fake_x_api import fake_x_api

pytestmark = [pytest.mark.faults]


def write_lines(path: Path, prefix: str, n: int) -> list[str]:
    ids = [f"{prefix}{i}" for i in range(n)]
    tweets = [{"id": i, "created_at": "2026-11-20T10:00:00Z", "user": "u", "text": f"good day {i}"} for i in ids]
    path.write_text("".join(json.dumps(t) + "\n" for t in tweets))
    return ids


def spooled_ids(spool: Path) -> list[str]:
    """The tweet ids in the spool's segments and its archive, in offset order."""
    records = []
    for seg in [*spool.glob("seg-*.jsonl"), *spool.with_name(spool.name + "-done").rglob("seg-*.jsonl")]:
        records += [json.loads(line) for line in seg.read_text().splitlines()]
    assert [r["offset"] for r in sorted(records, key=lambda r: r["offset"])] == list(range(len(records)))
    return [json.loads(r["line"])["id"] for r in sorted(records, key=lambda r: r["offset"])]


def run(p: Pipeline, *args: str, preexec=None, timeout: float = 120) -> subprocess.CompletedProcess:
    return run_module(*args, env=p.env, timeout=timeout, preexec=preexec)


def test_a_second_relay_on_the_same_spool_is_refused_at_once(tmp_path):
    p = Pipeline(tmp_path)
    ids = write_lines(tmp_path / "a.jsonl", "a", 100)
    first = p.start_relay("lines", "--file", str(tmp_path / "a.jsonl"), "--rate", "25")
    try:
        wait_until(lambda: read_holder(tmp_path / "spool").get("pid") == first.pid, 60, "the first relay's lock")
        second = run(p, "ingest", "lines", "--file", str(tmp_path / "a.jsonl"), "--start-over", timeout=60)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"in use by another relay: pid {first.pid}" in second.stderr
        assert p.wait("relay", 60) == 0
    finally:
        p.stop_all()
    assert spooled_ids(tmp_path / "spool") == ids  # each once, in order: the second one touched nothing


def test_a_relay_whose_disk_refuses_writes_exits_3_and_resumes_without_loss(tmp_path):
    p = Pipeline(tmp_path)
    ids = write_lines(tmp_path / "a.jsonl", "a", 400)  # about 40 KB of envelopes
    args = ("ingest", "lines", "--file", str(tmp_path / "a.jsonl"), "--rate", "0")
    failed = run(p, *args, preexec=file_size_limit(10_000))
    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert "cannot write to the spool" in failed.stderr
    state = json.loads((tmp_path / "spool" / "_state.json").read_text())
    assert state["next_offset"] < len(ids)
    resumed = run(p, *args)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert spooled_ids(tmp_path / "spool") == ids  # nothing skipped, nothing twice


def test_a_live_relay_whose_spool_writer_fails_exits_3(tmp_path):
    p = Pipeline(tmp_path)
    with fake_x_api() as api:
        env = {**p.env, "TWITTER_API_URL": api.url, "TWITTER_BEARER_TOKEN": "test-token"}
        # The spool's first segment cannot take three tweets.
        live = run_module("ingest", "twitter", "--track", "coffee", env=env, timeout=60, preexec=file_size_limit(300))
    assert live.returncode == 3, live.stdout + live.stderr
    assert "the spool writer failed" in live.stderr


@pytest.fixture
def fake_service():
    from tests.support.front import front, serve_front

    yield from serve_front(front(None, FakePredictor()))


def job_args(url: str, *extra: str) -> tuple[str, ...]:
    return ("stream", "--service-url", url, "--no-trends", "--trigger", "0.5", *extra)


@pytest.mark.slow
def test_a_second_job_on_the_same_checkpoint_is_refused_and_the_first_stops_within_10_s(tmp_path, fake_service):
    p = Pipeline(tmp_path)
    checkpoint = tmp_path / "checkpoints" / "tweets"
    first = p.start("job", *job_args(fake_service))
    try:
        wait_until(lambda: "stream: reading" in p.log("job"), 300, "the first job's Spark session")
        second = run(p, *job_args(fake_service, "--start-over"), timeout=120)
        assert second.returncode == 2, second.stdout + second.stderr
        assert f"in use by another job: pid {first.pid}" in second.stderr
        assert read_holder(checkpoint)["pid"] == first.pid and (checkpoint / "sink_id").exists()
        took = sigterm_and_time(first)
        assert took < 10, f"the job took {took:.1f}s to stop:\n{p.log('job')[-2000:]}"
    finally:
        p.stop_all()


@pytest.mark.slow
def test_relay_start_over_under_a_resumed_job_is_a_clear_error_and_nothing_is_skipped(tmp_path, fake_service):
    import pandas as pd

    p = Pipeline(tmp_path)
    a = write_lines(tmp_path / "a.jsonl", "a", 30)
    b = write_lines(tmp_path / "b.jsonl", "b", 30)
    assert run(p, "ingest", "lines", "--file", str(tmp_path / "a.jsonl")).returncode == 0
    done = run(p, *job_args(fake_service, "--until-done"), timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert sorted(pd.read_parquet(p.output)["id"]) == sorted(a)

    assert run(p, "ingest", "lines", "--file", str(tmp_path / "b.jsonl"), "--start-over").returncode == 0
    resumed = run(p, *job_args(fake_service, "--until-done"), timeout=600)
    assert resumed.returncode == 2, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert "is a new one" in resumed.stderr and "--start-over" in resumed.stderr
    assert spooled_ids(tmp_path / "spool") == b  # still there to be read, not skipped and archived

    again = run(p, *job_args(fake_service, "--until-done", "--start-over"), timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    counts = Counter(pd.read_parquet(p.output)["id"])
    assert sorted(counts) == sorted(b) and set(counts.values()) == {1}


@pytest.mark.slow
@pytest.mark.parametrize("when", ["serving", "loading"])
def test_the_model_service_stops_within_10_s_of_sigterm(tmp_path, when):
    p = Pipeline(tmp_path)
    try:
        if when == "serving":
            p.start_service()
        else:  # its workers forked and loading the model: a signal then must not be lost
            p.start("service", "model_api")
            wait_until(lambda: "Spawning worker-1" in p.log("service"), 60, "the workers to be forked")
        took = sigterm_and_time(p.procs.pop("service"))
        assert took < 10, f"the service took {took:.1f}s to stop:\n{p.log('service')[-2000:]}"
    finally:
        p.stop_all()
