"""Fault scenarios for the guards of docs/operations.md, run by :func:`tests.support.scenarios.run_scenario`.

``two-writers``: mid-stream, a second relay and a second job are started on the same spool and
checkpoint, both with ``--start-over``; both must be refused and the stream go on untouched.
``disk-full``: the relay's writes fail past 100 KB of a file (``RLIMIT_FSIZE``, as a full disk does)
mid-replay; it exits 3 and the same command, run again, resumes. ``sigterm``: the job, the relay and
the service are each stopped by SIGTERM mid-stream (the note gives how long each took) and the job
and relay are started again. Each row counts every tweet, as the other scenarios do.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.pipeline import Outcome, Pipeline, Reader, account, mid_stream, replay_ids
from tests.support.processes import file_size_limit, run_module, sigterm_and_time, wait_until


def two_writers(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    try:
        p.start_service()
        relay_args = ("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_relay(*relay_args)
        p.start_job()
        reader.start()
        mid_stream(p, tweets // 3)
        relay = run_module("ingest", *relay_args, "--start-over", env=p.env)
        job = run_module("stream", "--until-done", "--start-over", "--service-url", p.service_url, env=p.env)
        relay_refused = relay.returncode == 2 and "in use by another relay" in relay.stderr
        job_refused = job.returncode == 2 and "in use by another job" in job.stderr
        assert p.wait("relay", 600) == 0
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        notes = f"second relay refused: {relay_refused}; second job refused: {job_refused}"
        return account("two-writers", replay_ids(tweets), p, reader, 0.0, notes=notes)
    finally:
        reader.stop()
        p.stop_all()


def disk_full(work: Path, tweets: int) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    try:
        p.start_service()
        relay_args = ("replay", "--limit", str(tweets), "--rate", "0")
        p.start("relay", "ingest", *relay_args, preexec=file_size_limit(100_000))
        p.start_job()
        reader.start()
        status = p.wait("relay", 300)
        failed_at = time.monotonic()
        rows_down = p.rows()
        p.start_relay(*relay_args)
        wait_until(lambda: p.rows() > rows_down, 300, "a new row after the relay's rerun")
        recovered = time.monotonic() - failed_at
        assert p.wait("relay", 600) == 0
        job = p.wait("job", 600)
        assert job == 0, f"the job exited with {job}:\n{p.log('job')[-3000:]}"
        said = "cannot write to the spool" in p.log("relay")
        notes = f"relay exit status {status}, said why: {said}; resumed: {'resuming after record' in p.log('relay')}"
        return account("disk-full", replay_ids(tweets), p, reader, recovered, notes=notes)
    finally:
        reader.stop()
        p.stop_all()


def sigterm(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    reader = Reader(p.output)
    took: dict[str, float] = {}
    try:
        p.start_service()
        relay_args = ("replay", "--limit", str(tweets), "--rate", str(rate))
        p.start_relay(*relay_args)
        p.start_job()
        reader.start()
        mid_stream(p, tweets // 4)
        took["job"] = sigterm_and_time(p.procs.pop("job"))
        restarted, rows_down = time.monotonic(), p.rows()
        p.start_job()
        wait_until(lambda: p.rows() > rows_down, 300, "a new row after the job's restart")
        recovered = time.monotonic() - restarted
        took["relay"] = sigterm_and_time(p.procs.pop("relay"))
        p.start_relay(*relay_args)
        assert p.wait("relay", 600) == 0
        status = p.wait("job", 600)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        took["service"] = sigterm_and_time(p.procs.pop("service"))
        notes = "stopped after SIGTERM in " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items())
        return account("sigterm", replay_ids(tweets), p, reader, recovered, notes=notes)
    finally:
        reader.stop()
        p.stop_all()
