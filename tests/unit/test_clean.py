"""`make clean` deletes everything a run writes, so `make clean && ./run_pipeline.sh` starts afresh."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from sentiment.config import Config
from sentiment.spool_format import archive_dir
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def run_folders(config: Config) -> list[str]:
    """Every folder a default run writes, relative to the project root."""
    spool = config.relay.spool
    paths = [
        spool,
        str(archive_dir(ROOT / spool).relative_to(ROOT)),
        config.stream.output,
        config.stream.quarantine,
        config.stream.checkpoint,
        config.trends.output,
        config.trends.alerts,
        "output/logs",
    ]
    return sorted(set(paths))


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_clean_removes_every_folder_a_run_writes_and_keeps_the_readme(tmp_path):
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "README.md").write_text("kept")
    for folder in run_folders(Config()):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "x").write_text("made by a run")
    subprocess.run(["make", "--quiet", "clean"], cwd=tmp_path, check=True, capture_output=True)
    left = [f for f in run_folders(Config()) if (tmp_path / f).exists()]
    assert left == []
    assert (tmp_path / "output" / "README.md").read_text() == "kept"
