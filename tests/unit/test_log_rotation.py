"""Every log the pipeline writes is rotated by size (``[logs]``): a part's output copied through
``python -m sentiment.log_writer``, written past ``logs.max_bytes``, leaves the newest lines in the
log, the older ones in ``<log>.1``, ``<log>.2``, ... and no more than ``logs.backups`` of them."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import pytest

from harness.processes import wait_until
from sentiment.config import ConfigError, load_config
from sentiment.log_writer import copy_lines
from sentiment.logs import LogsConfig
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def numbered(n: int) -> bytes:
    return b"".join(b"line %04d %s\n" % (i, b"x" * 90) for i in range(n))  # 100 bytes a line


def test_writing_past_the_size_rotates_and_keeps_only_the_backups(tmp_path):
    log = tmp_path / "logs" / "relay.log"
    assert copy_lines(io.BytesIO(numbered(100)), str(log), LogsConfig(max_bytes=2048, backups=2)) == 100
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["relay.log", "relay.log.1", "relay.log.2"]  # the oldest lines, beyond two backups, are gone
    assert all(p.stat().st_size <= 2048 for p in log.parent.iterdir())
    assert log.read_bytes().endswith(b"line 0099 " + b"x" * 90 + b"\n")
    kept = b"".join((log.parent / n).read_bytes() for n in ("relay.log.2", "relay.log.1", "relay.log"))
    assert numbered(100).endswith(kept)  # the newest lines, in order, none cut


def test_a_restarted_writer_appends_to_the_log_it_finds(tmp_path):
    log = tmp_path / "model_api.log"
    logs = LogsConfig(max_bytes=10_000, backups=1)
    copy_lines(io.BytesIO(b"first run\n"), str(log), logs)
    copy_lines(io.BytesIO(b"second run\n"), str(log), logs)
    assert log.read_text() == "first run\nsecond run\n"


def test_the_writer_takes_its_sizes_from_the_environment_and_outlives_sigterm(tmp_path):
    log = tmp_path / "dashboard.log"
    env = {**os.environ, "TWEETSENT_LOGS__MAX_BYTES": "1024", "TWEETSENT_LOGS__BACKUPS": "3"}
    writer = subprocess.Popen(
        [sys.executable, "-m", "sentiment.log_writer", str(log)], cwd=ROOT, env=env, stdin=subprocess.PIPE
    )
    writer.stdin.write(numbered(10))
    writer.stdin.flush()
    wait_until(lambda: log.exists() and log.stat().st_size > 0, 30, "the writer's first lines")  # it is set up
    writer.send_signal(signal.SIGTERM)  # the part is being stopped: its last lines still reach the log
    writer.stdin.write(numbered(30)[1000:])
    writer.stdin.close()
    assert writer.wait(timeout=30) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dashboard.log", "dashboard.log.1", "dashboard.log.2"]
    assert log.read_bytes().endswith(b"line 0029 " + b"x" * 90 + b"\n")


def test_the_logs_settings_are_checked():
    assert load_config(env={"TWEETSENT_LOGS__MAX_BYTES": "4096"}).logs == LogsConfig(max_bytes=4096)
    with pytest.raises(ConfigError, match="logs.max_bytes must be at least 1024, got 10"):
        load_config(env={"TWEETSENT_LOGS__MAX_BYTES": "10"})
    with pytest.raises(ConfigError, match="logs.backups must be at least 1, got 0"):
        LogsConfig(backups=0)
