"""Every `python -m` command and every `--option` the README and docs/ name exists: each command's
`--help` runs, and each option is in the help of the command it is written with (or, in prose, of
some entry point of the project)."""

from __future__ import annotations

import functools
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a --help of each entry point: imports torch

DOCS = [
    ROOT / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "output" / "README.md",
    ROOT / "docker" / "README.md",
]
NOT_OURS = {"venv", "pip", "pytest"}  # python -m of other tools
SUBCOMMANDS = {"ingest": ("replay", "lines", "twitter")}
# Options of the other tools the docs show: spark-submit, docker compose, py-spy.
# Options of other tools the docs show: spark-submit, docker compose, python itself, Schemathesis's st.
OTHER_TOOLS = {"--master", "--deploy-mode", "--py-files", "--archives", "--conf", "--build", "--volumes", "--gil"}
OTHER_TOOLS |= {"--config-file", "--checks"}
COMMAND = re.compile(r"python -m ([a-z_][a-z0-9_.]*)((?:[ \t]+[^\s`|#)]+)*)")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]+")


def doc_text() -> dict[str, str]:
    return {str(p.relative_to(ROOT)): p.read_text() for p in DOCS}


@functools.cache
def help_text(module: str, sub: str | None = None) -> str:
    argv = [sys.executable, "-m", module, *([sub] if sub else []), "--help"]
    run = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, f"{' '.join(argv[1:])} failed: {run.stderr[-800:]}"
    return run.stdout


def commands() -> list[tuple[str, str, str]]:
    """(doc, module, the rest of the line) of every ``python -m`` of the project in the docs."""
    found = []
    for doc, text in doc_text().items():
        for match in COMMAND.finditer(text):
            if match.group(1).split(".")[0] not in NOT_OURS:
                found.append((doc, match.group(1), match.group(2)))
    return found


def test_every_python_m_command_in_the_docs_answers_help():
    modules = sorted({module for _, module, _ in commands()})
    assert "stream" in modules and "dashboard.demo" in modules
    for module in modules:
        help_text(module)


def test_every_option_written_with_a_command_is_in_that_commands_help():
    wrong = []
    for doc, module, rest in commands():
        words = rest.split()
        sub = words[0] if words and words[0] in SUBCOMMANDS.get(module, ()) else None
        text = help_text(module, sub)
        wrong += [f"{doc}: python -m {module} {o}" for o in OPTION.findall(rest) if o not in text]
    assert wrong == []


def test_every_option_the_docs_name_belongs_to_an_entry_point():
    pipeline = subprocess.run(["bash", str(ROOT / "run_pipeline.sh"), "--help"], capture_output=True, text=True).stdout
    known = set(OPTION.findall(pipeline)) | OTHER_TOOLS | {"--help"}
    for _, module, _ in commands():
        known |= set(OPTION.findall(help_text(module)))
        for sub in SUBCOMMANDS.get(module, ()):
            known |= set(OPTION.findall(help_text(module, sub)))
    unknown = sorted(
        {f"{doc}: {o}" for doc, text in doc_text().items() for o in OPTION.findall(text) if o not in known}
    )
    assert unknown == []
