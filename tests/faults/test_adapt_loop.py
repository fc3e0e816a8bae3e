"""Teaching the running pipeline a keyword: labels taken from its output, a model adapted on them and
rolled out while the job streams; every tweet once, each row stamped with the model that scored it.

Real processes (the service on the 3-layer model, the relay, the job: :class:`harness.pipeline.Pipeline`).
The labels are drawn as the labelling page draws them (:func:`sentiment.labelled.draw_tweets`, a few
at a time, never one already labelled) and appended one by one through
:class:`sentiment.labelled.LabelsTable`; a word list stands in for the person. ``python -m
experiments.adapt`` (a tiny run) and ``python -m model_api.rollout`` run as an operator runs them.
The relay replays the sample in a loop at a steady rate for as long as labelling and adapting take,
then is stopped and run again to a limit, so the replay ends a few seconds after the roll-out.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness.pipeline import Pipeline, Reader, account
from harness.processes import run_module, wait_until
from ingest.replay import BUNDLED_SAMPLE, replay_tweets
from model_api.model.locations import FAST_MODEL_DIR
from sentiment.labelled import LabelsTable, draw_tweets
from sentiment.labels import NEGATIVE, NEUTRAL, POSITIVE
from sentiment.parquet_folder import read_folder
from tests.faults.test_faults import check
from tests.faults.test_model_rollout import failed_requests, rollout, served, version

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TRACK = ("day", "work", "night")  # 656 tweets of the bundled sample, 380 of them the keyword's
KEYWORD = "day"
RATE = 4.0  # tweets per second, all along the loop
# The relay loops over the sample (a looped copy's id is suffixed ~N) until the model is rolled
# out, however long adapting takes on a busy machine; then it is stopped and run again to a limit
# TAIL tweets further, so that the replay ends.
RELAY = ("replay", "--track", *TRACK, "--loop", "--rate", str(RATE))
TAIL = 40
LABELS = 45  # labels taken, QUEUE at a time
QUEUE = 5  # tweets drawn at a time, as the labelling page draws them
ADAPT_SETTINGS = (
    *("--min-labels", "30", "--repeat", "2"),
    *("--original-rows", "50", "--sentiment140-rows", "50", "--check-rows", "50"),
    "--force",  # so few labels and steps may not beat the base: written anyway, the card says why
)
GOOD = {"love", "good", "great", "happy", "fun", "nice", "awesome", "thanks", "thank", "best", "yay", "haha", "lol"}
GOOD |= {"glad", "hope", "amazing", "beautiful", "enjoy", "excited", "cool", "wonderful"}
BAD = {"sad", "bad", "hate", "miss", "sick", "tired", "sorry", "ugh", "worst", "hurts", "cry", "boring", "lost"}
BAD |= {"not", "no", "never", "can't", "cant", "don't", "dont"}
BASE = version(FAST_MODEL_DIR)
TIMEOUT = 600  # seconds, for each part of the loop on a busy machine


def judged(text: str) -> str:
    """The stand-in person's label: a word of ``BAD`` makes it Negative, else one of ``GOOD``
    Positive, else Neutral."""
    words = {w.strip(".,!?:;()'\"") for w in text.lower().split()}
    if words & BAD:
        return NEGATIVE
    return POSITIVE if words & GOOD else NEUTRAL


def scored(p: Pipeline, columns: tuple[str, ...] = ("id", "model_version")) -> pd.DataFrame:
    """The rows the job has written so far (files in progress skipped, as a reader sees them)."""
    rows = read_folder(p.output, columns=list(columns))
    return rows if not rows.empty else pd.DataFrame(columns=list(columns))


def keyword_rows(p: Pipeline) -> pd.DataFrame:
    columns = ("id", "keyword", "text", "p_positive", "sentiment", "model_version")
    rows = scored(p, columns)
    return rows[rows["keyword"] == KEYWORD]


def label_from_output(p: Pipeline, table: LabelsTable) -> pd.DataFrame:
    """Take ``LABELS`` labels of the keyword's scored tweets as the labelling page takes them: a
    queue drawn from the output, each label appended as soon as it is given."""
    wait_until(lambda: len(keyword_rows(p)) >= LABELS + 15, TIMEOUT, f"{LABELS + 15} tweets of {KEYWORD!r} scored")
    given: set[str] = set()
    while len(given) < LABELS:
        queue = draw_tweets(keyword_rows(p), set(table.read(KEYWORD)["id"]), min(QUEUE, LABELS - len(given)))
        assert not queue.empty, "the draw found nothing left to label"
        for tweet in queue.to_dict("records"):
            assert tweet["id"] not in given, f"{tweet['id']} was drawn again after it was labelled"
            row = {k: tweet[k] for k in ("id", "keyword", "text", "p_positive", "sentiment", "model_version", "drawn")}
            table.append([{**row, "label": judged(tweet["text"])}])
            given.add(tweet["id"])
    labels = table.read(KEYWORD)
    assert sorted(labels["id"]) == sorted(given) and set(labels["model_version"]) == {BASE}
    assert labels["label"].nunique() >= 2, labels["label"].value_counts()  # what adapt needs
    return labels


def adapt(p: Pipeline, out: Path) -> subprocess.CompletedProcess:
    args = ("--labels", str(p.work / "labels"), "--keyword", KEYWORD, "--base", str(FAST_MODEL_DIR), "--out", str(out))
    return run_module("experiments.adapt", *args, *ADAPT_SETTINGS, env=p.env, timeout=TIMEOUT)


def check_adapted(done: subprocess.CompletedProcess, out: Path, labels_folder: Path, labels: int) -> str:
    """The model adapt wrote (exit 0: with --force it is written even when a figure failed, and its
    card says which); return its version as the service will name it."""
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    assert not out.with_name(out.name + ".adapting").exists()
    assert all((out / f).is_file() for f in ("model.safetensors", "config.json", "adapt.json", "README.md"))
    report = json.loads((out / "adapt.json").read_text())
    assert report["keyword"] == KEYWORD and sum(report["labels"].values()) == labels, report["labels"]
    card = (out / "README.md").read_text()
    assert f"python -m experiments.adapt --labels {labels_folder} --keyword {KEYWORD}" in card
    assert ("Written with --force although" in card) == bool(report["failed"]), report["failed"]
    meta = json.loads((out / "tweet_sentiment.json").read_text())
    assert meta["name"].endswith(f"-adapted-{KEYWORD}")
    return f"{meta['name']}@{meta['version']}"


def roll_out(p: Pipeline, model: Path, expected: str) -> None:
    """``python -m model_api.rollout`` to the running service: it names the new version, and so does the service."""
    done = rollout(model, [p.service_url])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all 1 replicas serve it" in done.stdout and f"serves {expected}" in done.stdout, done.stdout
    assert served(p.service_url) == expected


def check_stamps(rows: pd.DataFrame, before: set[str], settled: set[str], new: str) -> None:
    """Rows scored before the roll-out carry the base's version, rows of a batch begun after it the
    new one's, and no row carries the base's version after one carries the new's."""
    counts = rows["model_version"].value_counts().to_dict()
    assert set(counts) == {BASE, new}, counts
    assert set(rows.loc[rows["id"].isin(before), "model_version"]) == {BASE}
    after = rows[~rows["id"].isin(settled)]
    assert not after.empty, "no batch began after the roll-out: the stream ended too soon, slow RATE down"
    assert set(after["model_version"]) == {new}, after["model_version"].value_counts()
    last_base = rows.loc[rows["model_version"] == BASE, "processed_at"].max()
    assert last_base <= rows.loc[rows["model_version"] == new, "processed_at"].min()


def finish_replay(p: Pipeline) -> list[str]:
    """Stop the looping relay (SIGTERM: it stops between records), then run it again with a limit
    ``TAIL`` records past what it wrote: it resumes after its last record, and the replay ends.
    Return the ids of every tweet relayed."""
    p.kill("relay", signal.SIGTERM)
    written = p.spooled()
    p.start_relay(*RELAY, "--limit", str(written + TAIL))
    assert p.wait("relay", TIMEOUT) == 0, p.log("relay")[-2000:]
    assert f"resuming after record {written}" in p.log("relay"), p.log("relay")[-2000:]
    return [t.id for t in replay_tweets(BUNDLED_SAMPLE, track=list(TRACK), loop=True, limit=written + TAIL)]


def test_labels_from_the_output_adapt_a_model_rolled_out_under_the_running_job(tmp_path):
    p = Pipeline(tmp_path / "work")
    p.env.update(
        TWEETSENT_SERVICE__MODEL=str(FAST_MODEL_DIR),  # the small model: the one adapted
        TWEETSENT_SERVICE__WORKERS="1",  # two cores, shared with the job and the fine-tuning
        TWEETSENT_SERVICE__ENGINE_PROCESSES="1",
    )
    reader = Reader(p.output)
    try:
        p.start_service()
        assert served(p.service_url) == BASE
        p.start_relay(*RELAY)
        p.start_job()
        reader.start()

        labels = label_from_output(p, LabelsTable(p.work / "labels"))
        out = tmp_path / "models" / KEYWORD
        new = check_adapted(adapt(p, out), out, p.work / "labels", len(labels))
        assert new != BASE

        before = set(scored(p)["id"])
        roll_out(p, out, new)
        at_swap = p.rows()
        # A batch under way at the swap may have been scored before it: once one more is written,
        # every row not yet written belongs to a batch begun after the swap.
        wait_until(lambda: p.rows() > at_swap, TIMEOUT, "a batch written after the roll-out")
        settled = set(scored(p)["id"])
        assert p.procs["relay"].poll() is None, "the relay stopped before the roll-out"

        expected = finish_replay(p)
        p.job_done(TIMEOUT)
        check(account("adapt-loop", expected, p, reader, 0.0))
        assert failed_requests(p.service_url) == 0
        check_stamps(pd.read_parquet(p.output, columns=["id", "model_version", "processed_at"]), before, settled, new)
    finally:
        reader.stop()
        p.stop_all()
