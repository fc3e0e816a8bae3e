"""The code's shape, read from the source without running it: no module of the product over 400
lines, no function over 60 (argument parsers excepted), so that each file and function does one
thing a reader can hold in mind."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
# Everything but the tests: what runs, what measures and what trains.
PACKAGES = ("ingest", "stream", "model_api", "sentiment", "dashboard", "experiments", "benchmarks", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def long_functions(path: Path, limit: int) -> list[str]:
    """``name (N lines)`` of each function in ``path`` longer than ``limit`` lines, but argument
    parsers (``build_parser``, ``*_parser``: one ``add_argument`` after another)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.endswith("parser"):
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(f"{node.name} ({lines} lines)")
    return found


def test_the_walk_finds_long_functions_and_spares_parsers(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(5))
    (tmp_path / "m.py").write_text(
        f"def short():\n{body}\ndef build_parser():\n{body * 3}\nasync def long():\n{body * 3}"
    )
    assert long_functions(tmp_path / "m.py", 10) == ["long (16 lines)"]


def test_the_packages_are_there() -> None:
    assert len(modules()) > 100 and all((ROOT / p).is_dir() for p in PACKAGES if p != "scripts")


def test_no_module_over_400_lines() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines()) for p in modules()}
    assert {m: n for m, n in sizes.items() if n > MAX_MODULE_LINES} == {}


def test_no_function_over_60_lines() -> None:
    offending = {str(p.relative_to(ROOT)): found for p in modules() if (found := long_functions(p, MAX_FUNCTION_LINES))}
    assert offending == {}
