"""Fault scenarios for the guards of docs/operations.md, run by :func:`harness.scenarios.run_scenario`.

``two-writers``: mid-stream, a second relay and a second job are started on the same spool and
checkpoint, both with ``--start-over``; both must be refused and the stream go on untouched.
``disk-full``: the relay's writes fail past 100 KB of a file (``RLIMIT_FSIZE``, as a full disk does)
mid-replay; it exits 3 and the same command, run again, resumes. ``sigterm``: the job, the relay and
the service are each stopped by SIGTERM mid-stream (the note gives how long each took) and the job
and relay are started again. Each row counts every tweet, as the other scenarios do.
"""

from __future__ import annotations

from pathlib import Path

from harness.pipeline import Outcome, Pipeline, account, mid_stream, replay_ids, watched
from harness.processes import file_size_limit, run_module, sigterm_and_time


def two_writers(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    with watched(p) as reader:
        relay_args = p.start_replay(tweets, rate)
        reader.start()
        mid_stream(p, tweets // 3)
        relay = run_module("ingest", *relay_args, "--start-over", env=p.env)
        job = run_module("stream", "--until-done", "--start-over", "--service-url", p.service_url, env=p.env)
        relay_refused = relay.returncode == 2 and "in use by another relay" in relay.stderr
        job_refused = job.returncode == 2 and "in use by another job" in job.stderr
        assert p.wait("relay", 600) == 0
        p.job_done()
        notes = f"second relay refused: {relay_refused}; second job refused: {job_refused}"
        return account("two-writers", replay_ids(tweets), p, reader, 0.0, notes=notes)


def disk_full(work: Path, tweets: int) -> Outcome:
    p = Pipeline(work)
    with watched(p) as reader:
        p.start_service()
        relay_args = ("replay", "--limit", str(tweets), "--rate", "0")
        p.start("relay", "ingest", *relay_args, preexec=file_size_limit(100_000))
        p.start_job()
        reader.start()
        status = p.wait("relay", 300)
        recovered = p.recover("the relay's rerun", lambda: p.start_relay(*relay_args))
        assert p.wait("relay", 600) == 0
        p.job_done()
        said = "cannot write to the spool" in p.log("relay")
        notes = f"relay exit status {status}, said why: {said}; resumed: {'resuming after record' in p.log('relay')}"
        return account("disk-full", replay_ids(tweets), p, reader, recovered, notes=notes)


def sigterm(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    took: dict[str, float] = {}
    with watched(p) as reader:
        relay_args = p.start_replay(tweets, rate)
        reader.start()
        mid_stream(p, tweets // 4)
        took["job"] = sigterm_and_time(p.procs.pop("job"))
        recovered = p.recover("the job's restart", p.start_job)
        took["relay"] = sigterm_and_time(p.procs.pop("relay"))
        p.start_relay(*relay_args)
        assert p.wait("relay", 600) == 0
        p.job_done()
        took["service"] = sigterm_and_time(p.procs.pop("service"))
        notes = "stopped after SIGTERM in " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items())
        return account("sigterm", replay_ids(tweets), p, reader, recovered, notes=notes)
