"""Fault scenarios about what a request carries: long posts of non-ASCII text through the whole pipeline.

Usage: ``run_scenario("long-posts", ...)`` (:mod:`harness.scenarios`), or
``python -m benchmarks.faults --scenario long-posts``

``long-posts``: ordinary tweets with valid posts of 20,000 CJK characters mixed in (60 KB a line,
under the relay's line limit; 120 KB each as the JSON of a request): the job packs its requests by
bytes below the service's body limit and cuts each text to what the model reads, so every tweet is
scored once and the job ends with status 0.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from harness.pipeline import Outcome, Pipeline, account, parquet_files, watched
from ingest.replay import BUNDLED_SAMPLE, replay_tweets

LONG_CHARS = 20_000


def long_post(i: int, rng: random.Random) -> dict:
    """A valid post of ``LONG_CHARS`` CJK characters (U+4E00 to U+9FFF)."""
    text = "".join(chr(rng.randrange(0x4E00, 0xA000)) for _ in range(LONG_CHARS))
    return {"id": f"long-{i}", "created_at": "2026-01-01T00:00:00Z", "user": "long", "text": text}


def long_posts(work: Path, tweets: int, long: int = 40) -> Outcome:
    """``tweets`` ordinary tweets with ``long`` long posts spread among them, replayed as JSON lines."""
    p = Pipeline(work)
    rng = random.Random(26)
    posts = [json.loads(t.to_json_line()) for t in replay_tweets(BUNDLED_SAMPLE, limit=tweets)]
    every = max(1, len(posts) // long)
    for i in range(long):
        posts.insert(i * (every + 1), long_post(i, rng))
    lines = work / "long.jsonl"
    work.mkdir(parents=True, exist_ok=True)
    lines.write_text("".join(json.dumps(post, ensure_ascii=False) + "\n" for post in posts), encoding="utf-8")
    with watched(p) as reader:
        started = p.start_lines(lines)
        reader.start()
        status = p.wait("job", 900)
        import pandas as pd

        quarantined = len(pd.read_parquet(p.quarantine)) if parquet_files(p.quarantine) else 0
        biggest = max(len(line.encode()) for line in lines.read_text(encoding="utf-8").splitlines())
        return account(
            "long-posts",
            [post["id"] for post in posts],
            p,
            reader,
            time.monotonic() - started,
            notes=f"job exit {status}; {long} posts of {LONG_CHARS:,} CJK characters (lines up to {biggest:,} "
            f"bytes); {quarantined} quarantined",
            quarantined=quarantined,
        )
