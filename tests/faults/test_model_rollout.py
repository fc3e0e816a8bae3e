"""A model swapped while the job streams through the service: every tweet once, every row stamped
with the model that scored it, a bad model refused while the old one serves on.

Real processes (service, relay, job: :class:`benchmarks.faults.Pipeline`); the swaps go through
``POST /admin/model`` and ``python -m model_api.rollout``, as an operator would send them.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness.pipeline import Pipeline, Reader, account, mid_stream, replay_ids
from model_api.model.locations import FAST_MODEL_DIR, FULL_MODEL_DIR
from tests.conftest import ROOT
from tests.faults.test_faults import check

pytestmark = [pytest.mark.faults, pytest.mark.slow]

TWEETS = 2000
RATE = 15.0  # slow enough that the stream outlasts two swaps (about 2 minutes)
SAMPLE = 150  # rows re-scored with each model


def version(model_dir: Path) -> str:
    info = json.loads((model_dir / "tweet_sentiment.json").read_text())
    return f"{info['name']}@{info['version']}"


FAST, FULL = version(FAST_MODEL_DIR), version(FULL_MODEL_DIR)


def bad_model(tmp: Path) -> Path:
    """A directory with a config.json whose labels are garbage."""
    folder = tmp / "bad-model"
    folder.mkdir()
    config = json.loads((FAST_MODEL_DIR / "config.json").read_text())
    config["id2label"], config["label2id"] = {"0": "foo", "1": "bar", "2": "baz"}, {}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def swap(url: str, model: str | Path, timeout: float = 600) -> requests.Response:
    return requests.post(url + "/admin/model", json={"model": str(model)}, timeout=timeout)


def served(url: str) -> str:
    return requests.get(url + "/model", timeout=10).json()["model_version"]


def failed_requests(url: str) -> int:
    """Scoring requests the service answered with an error, from its /metrics."""
    text = requests.get(url + "/metrics", timeout=10).text
    pattern = r'tweetsent_requests_total\{endpoint="/predict(?:/batch)?",status="(\d+)"\} ([0-9.e+]+)'
    return int(sum(float(n) for status, n in re.findall(pattern, text) if status != "200"))


def check_versions(p: Pipeline) -> dict[str, int]:
    """Each row's model_version is the model whose score it carries: a sample re-scored with both."""
    import pandas as pd

    from model_api.model.predictor import SentimentPredictor

    rows = pd.read_parquet(p.output, columns=["id", "text", "p_positive", "model_version"])
    counts = rows["model_version"].value_counts().to_dict()
    assert set(counts) <= {FAST, FULL}, counts
    rng = random.Random(7)
    sample = pd.concat(
        [g.iloc[rng.sample(range(len(g)), min(len(g), SAMPLE // 2))] for _, g in rows.groupby("model_version")]
    )
    texts = sample["text"].tolist()
    scores = {
        v: [r.p_positive for r in SentimentPredictor.from_pretrained(d, precision="fp32").predict(texts)]
        for v, d in ((FAST, FAST_MODEL_DIR), (FULL, FULL_MODEL_DIR))
    }
    decided = 0
    for i, (p_row, stamped) in enumerate(zip(sample["p_positive"], sample["model_version"], strict=True)):
        other = FULL if stamped == FAST else FAST
        if abs(scores[FAST][i] - scores[FULL][i]) < 0.01:
            continue  # both models agree: the score cannot tell them apart
        decided += 1
        assert abs(p_row - scores[stamped][i]) < 2e-3, f"{texts[i]!r}: {p_row} is not {stamped}'s score"
        assert abs(p_row - scores[other][i]) > abs(p_row - scores[stamped][i])
    assert decided >= SAMPLE // 3, f"only {decided} sampled rows tell the models apart"
    return counts


def test_swap_to_the_fast_model_and_back_under_load(tmp_path):
    p = Pipeline(tmp_path)
    reader = Reader(p.output)
    try:
        p.start_service()
        assert served(p.service_url) == FULL  # the default
        p.start_relay("replay", "--limit", str(TWEETS), "--rate", str(RATE))
        p.start_job()
        reader.start()
        mid_stream(p, TWEETS // 8)

        forward = swap(p.service_url, FAST_MODEL_DIR)
        assert forward.status_code == 200, forward.text
        answer = forward.json()
        assert answer["version"] == FAST and answer["previous_version"] == FULL
        assert answer["workers"]["serving"] == answer["workers"]["of"]
        assert served(p.service_url) == FAST
        rows_at_forward = p.rows()

        for bad, reason in (
            (bad_model(tmp_path), "classes or metadata cannot be read"),
            (tmp_path / "nowhere", "no such"),
        ):
            refused = swap(p.service_url, bad)
            assert refused.status_code == 422 and reason in refused.json()["error"], refused.text
            assert served(p.service_url) == FAST and requests.get(p.service_url + "/health", timeout=10).ok

        info = requests.get(p.service_url + "/model", timeout=10).json()
        back = swap(p.service_url, info["previous"])  # roll back: the previous directory, the same route
        assert back.status_code == 200 and back.json()["version"] == FULL, back.text
        assert p.rows() < TWEETS, "the stream ended before the roll back: slow RATE down"

        status = p.wait("job", 900)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        outcome = account("model-rollout", replay_ids(TWEETS), p, reader, 0.0)
        check(outcome)
        assert failed_requests(p.service_url) == 0
        counts = check_versions(p)
        assert counts.get(FAST, 0) > 0 and counts[FULL] > rows_at_forward, counts
    finally:
        reader.stop()
        p.stop_all()


def rollout(model: str | Path, urls: list[str]) -> subprocess.CompletedProcess:
    services = [arg for url in urls for arg in ("--service", url)]
    return subprocess.run(
        [sys.executable, "-m", "model_api.rollout", "--model", str(model), *services],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_rolling_two_replicas_under_load(tmp_path):
    p = Pipeline(tmp_path, replicas=2)
    p.env["TWEETSENT_SERVICE__WORKERS"] = "1"  # two replicas on two cores
    reader = Reader(p.output)
    try:
        p.start_service()
        p.start_relay("replay", "--limit", str(TWEETS), "--rate", str(RATE))
        p.start_job()
        reader.start()
        mid_stream(p, TWEETS // 8)

        refused = rollout(bad_model(tmp_path), p.service_urls)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "refused" in refused.stdout and "not reached" in refused.stdout, refused.stdout
        assert [served(u) for u in p.service_urls] == [FULL, FULL]  # the default

        forward = rollout(FAST_MODEL_DIR, p.service_urls)
        assert forward.returncode == 0, forward.stdout + forward.stderr
        assert "all 2 replicas serve it" in forward.stdout
        assert [served(u) for u in p.service_urls] == [FAST, FAST]
        assert p.rows() < TWEETS, "the stream ended before the roll-out: slow RATE down"

        status = p.wait("job", 900)
        assert status == 0, f"the job exited with {status}:\n{p.log('job')[-3000:]}"
        outcome = account("rolling-replicas", replay_ids(TWEETS), p, reader, 0.0)
        check(outcome)
        assert [failed_requests(u) for u in p.service_urls] == [0, 0]
        counts = check_versions(p)
        assert counts.get(FULL, 0) > 0 and counts.get(FAST, 0) > 0, counts
    finally:
        reader.stop()
        p.stop_all()
