"""Fault scenarios: the real pipeline broken on purpose, every tweet counted.

Usage: ``outcome = run_scenario("kill-job", work, tweets=1500, rate=100.0, outage=0)``

Each scenario starts the real parts as separate processes, as ``run_pipeline.sh`` does (the model
service, the relay writing the spool, the Spark job), breaks one, repairs it, waits for the job to
finish the replay, and counts what ``pandas.read_parquet`` returns: every input id exactly once, or
the ids lost and duplicated. A reader polls the output all along and counts its errors. The tests in
``tests/faults`` assert on the outcomes; ``python -m benchmarks.faults`` prints them.

Scenarios: ``service-outage`` (the service stopped for ``outage`` seconds mid-stream, then
started again), ``kill-job`` (the job SIGKILLed mid-stream, then the same command run again),
``kill-relay`` (the relay SIGKILLed mid-stream, then rerun), ``malformed-flood`` (a JSON-lines file
with one bad line of 13 kinds for every two good ones, and one id sent 62 times), ``cluster`` (the
job on a standalone master with two workers), ``kill-worker`` (the same, one worker SIGKILLed
mid-stream), ``kill-replica`` (two model-service replicas, one SIGKILLed mid-stream),
``long-posts`` (:mod:`harness.long_posts`), and the guards' scenarios of
:mod:`harness.guards`: ``two-writers``, ``disk-full``, ``sigterm``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import guards
from harness.long_posts import long_posts
from harness.pipeline import (
    Cluster,
    Outcome,
    Pipeline,
    Reader,
    account,
    mid_stream,
    parquet_files,
    replay_ids,
    watched,
)
from harness.processes import wait_until
from ingest.replay import BUNDLED_SAMPLE, replay_tweets

SCENARIOS = (
    "service-outage",
    "kill-job",
    "kill-relay",
    "malformed-flood",
    "long-posts",
    "cluster",
    "kill-worker",
    "kill-replica",
    "two-writers",
    "disk-full",
    "sigterm",
)


def service_outage(work: Path, tweets: int, rate: float, outage: float) -> Outcome:
    p = Pipeline(work)
    with watched(p) as reader:
        p.start_replay(tweets, rate)
        reader.start()
        mid_stream(p, tweets // 4)
        p.kill("service")
        down_at, rows_down = time.monotonic(), p.rows()
        time.sleep(outage)  # the fault itself lasts this long; outcomes are polled below
        p.start_service()
        recovered = wait_until(lambda: p.rows() > rows_down, 300, "a new row after the outage")
        p.job_done()
        held = "holding batch" in p.log("job")
        return account(
            "service-outage",
            replay_ids(tweets),
            p,
            reader,
            recovered,
            notes=f"down {time.monotonic() - down_at - recovered:.0f}s; job said it held a batch: {held}",
        )


def kill_job(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    with watched(p) as reader:
        p.start_replay(tweets, rate)
        reader.start()
        mid_stream(p, tweets // 3)
        p.kill("job")
        recovered = p.recover("the job's restart", p.start_job)
        p.job_done()
        return account("kill-job", replay_ids(tweets), p, reader, recovered)


def kill_relay(work: Path, tweets: int, rate: float) -> Outcome:
    p = Pipeline(work)
    with watched(p) as reader:
        relay_args = p.start_replay(tweets, rate)
        reader.start()
        wait_until(lambda: p.spooled() >= tweets // 3, 300, f"{tweets // 3} tweets in the spool")
        p.kill("relay")
        recovered = p.recover("the relay's restart", lambda: p.start_relay(*relay_args))
        assert p.wait("relay", 600) == 0
        p.job_done()
        return account(
            "kill-relay",
            replay_ids(tweets),
            p,
            reader,
            recovered,
            notes="relay resumed: " + str("resuming after record" in p.log("relay")),
        )


def cluster_replay(
    work: Path, tweets: int, rate: float, kill_worker: bool = False, cluster: Cluster | None = None
) -> Outcome:
    """The replay through a standalone master and two workers (``cluster``, or one started here and
    stopped at the end); with ``kill_worker``, worker 1 (its executor and Python workers too) is
    SIGKILLed mid-stream and the job must go on with worker 2."""
    own = cluster is None
    cluster = cluster or Cluster(work / "cluster")
    if own:
        cluster.start()
    p = Pipeline(work, master=cluster.url)
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(tweets), "--rate", str(rate))
        started, before = time.monotonic(), cluster.apps()
        p.start_job()
        reader.start()
        notes, recovered = "", 0.0
        wait_until(lambda: "worker-1" in cluster.executors(since=before), 300, "an executor on worker 1")
        if kill_worker:
            mid_stream(p, tweets // 3)
            cluster.kill_worker(1)
            recovered = p.recover("worker 1 was killed")
        p.job_done()
        notes = f"executors on {', '.join(cluster.executors(since=before))}; took {time.monotonic() - started:.0f}s"
        return account("kill-worker" if kill_worker else "cluster", replay_ids(tweets), p, reader, recovered, notes)
    finally:
        reader.stop()
        p.stop_all()
        if own:
            cluster.stop()


def kill_replica(work: Path, tweets: int, rate: float) -> Outcome:
    """Two model-service replicas; the second is SIGKILLed mid-stream and stays down."""
    p = Pipeline(work, replicas=2)
    with watched(p) as reader:
        p.start_replay(tweets, rate)
        reader.start()
        mid_stream(p, tweets // 3)
        p.kill("service-2")
        recovered = p.recover("replica 2 was killed")
        p.job_done()
        dead = p.service_urls[1]
        named = sum(dead in line for line in p.log("job").splitlines() if "replica" in line)
        return account("kill-replica", replay_ids(tweets), p, reader, recovered, notes=f"job log names {dead}: {named}")


def malformed_lines(good: list[dict]) -> list[tuple[bytes, str]]:
    """One bad line of each kind, with (a prefix of) the reason the quarantine must give."""
    ok = good[0]
    return [
        (b"this is not json", "not a valid JSON object"),
        (b'{"id": "x1", "text": "unterminated', "not a valid JSON object"),
        (b'["an", "array"]', "not a valid JSON object"),
        (json.dumps({**ok, "id": {"nested": 1}}).encode(), 'field "id" must be a string or an integer, got object'),
        (json.dumps({**ok, "text": 42}).encode(), 'field "text" must be a string, got bigint'),
        (json.dumps({k: v for k, v in ok.items() if k != "id"}).encode(), 'missing field "id"'),
        (json.dumps({**ok, "id": "  "}).encode(), 'empty field "id"'),
        (json.dumps({k: v for k, v in ok.items() if k != "text"}).encode(), 'missing field "text"'),
        (json.dumps({**ok, "id": "x9", "created_at": "yesterday"}).encode(), '"created_at" is not an ISO 8601'),
        (b'{"id": "x2", "text": "caf\xe9 latin-1"}', "not valid UTF-8"),
        (b'{"id": "x3", "text": "nul \x00 inside"}', "not a valid JSON object"),
        (b'{"id": "x4", "text": "' + b"a" * (1 << 20) + b'"}', "line of 1,048,"),
        (b"", "blank line"),
        (b"0,123,only three fields", "not a valid JSON object"),
    ]


def malformed_flood(work: Path, tweets: int) -> Outcome:
    """Good tweets with one bad line of 14 kinds after every two, and one good id sent 62 times."""
    p = Pipeline(work)
    good = [json.loads(t.to_json_line()) for t in replay_tweets(BUNDLED_SAMPLE, limit=tweets)]
    kinds = malformed_lines(good)
    lines: list[bytes] = []
    expected_reasons: list[str] = []
    for i, tweet in enumerate(good):
        lines.append(json.dumps(tweet).encode())
        if i % 2 == 1:
            bad, reason = kinds[(i // 2) % len(kinds)]
            lines.append(bad)
            expected_reasons.append(reason)
    repeated = json.dumps(good[7]).encode()
    lines += [repeated] * 61  # with the original: 62 copies of one id
    flood = work / "flood.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    flood.write_bytes(b"\n".join(lines) + b"\n")
    with watched(p) as reader:
        started = p.start_lines(flood)
        reader.start()
        status = p.wait("job", 900)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        import pandas as pd

        q = pd.read_parquet(p.quarantine) if parquet_files(p.quarantine) else pd.DataFrame(columns=["reason"])
        reasons = sorted(q["reason"].tolist())
        matched = sum(
            1
            for want, got in zip(sorted(expected_reasons), _match(expected_reasons, reasons), strict=True)
            if got is not None and want in got
        )
        return account(
            "malformed-flood",
            [t["id"] for t in good],
            p,
            reader,
            time.monotonic() - started,
            quarantined=len(q),
            bad_lines=len(expected_reasons),
            notes=f"{matched} of {len(expected_reasons)} bad lines quarantined with the expected reason",
        )


def _match(wanted: list[str], got: list[str]) -> list[str | None]:
    """Pair each wanted reason prefix (sorted) with a distinct quarantined reason containing it."""
    pool = list(got)
    out: list[str | None] = []
    for want in sorted(wanted):
        hit = next((g for g in pool if want in g), None)
        if hit is not None:
            pool.remove(hit)
        out.append(hit)
    return out


def run_scenario(name: str, work: Path, tweets: int, rate: float, outage: float) -> Outcome:
    """Run the scenario ``name`` (one of :data:`SCENARIOS`) in the folder ``work``."""
    if name == "service-outage":
        return service_outage(work, tweets, rate, outage)
    if name == "kill-job":
        return kill_job(work, tweets, rate)
    if name == "kill-relay":
        return kill_relay(work, tweets, rate)
    if name == "malformed-flood":
        return malformed_flood(work, tweets)
    if name in ("cluster", "kill-worker"):
        return cluster_replay(work, tweets, rate, kill_worker=name == "kill-worker")
    if name == "kill-replica":
        return kill_replica(work, tweets, rate)
    if name == "long-posts":
        return long_posts(work, min(tweets, 300))
    if name == "two-writers":
        return guards.two_writers(work, tweets, rate)
    if name == "disk-full":
        return guards.disk_full(work, tweets)
    if name == "sigterm":
        return guards.sigterm(work, tweets, rate)
    raise ValueError(f"unknown scenario {name!r}; one of {SCENARIOS}")
